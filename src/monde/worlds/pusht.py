"""PushT: a round agent pushes a T-shaped block across a table toward a goal pose.

The manipulation task of Diffusion Policy and DINO-WM, with monde's stateless, batched world
interface (like :class:`~monde.worlds.two_rooms.TwoRooms`): planners and data collection call
:meth:`PushT.step` on arrays of states, and the same state and action always give the same
next state. The physics is 2-D `pymunk <https://www.pymunk.org>`_ seen from above (no
gravity); the renderer is numpy.

Conventions
-----------
* The table is ``ARENA × ARENA`` (512) units with walls on its border; ``x`` grows to the
  right, ``y`` downward, ``(0, 0)`` is the top-left corner (image convention).
* The agent is a disc of radius ``AGENT_RADIUS`` on a body ``agent_mass`` heavy (5× the block),
  driven by a PD force toward a target point; it collides with the walls and the block.
* The block is the union of a bar (``120 × 30``) and a stem (``30 × 90``) hanging below the
  bar's centre. Its body origin is the T's centre of mass, so the pose ``(bx, by, θ)`` is the
  pose of the centre of mass; ``θ`` turns the body frame into the world frame
  (``world = R(θ) · body + (bx, by)``; with ``y`` down a positive ``θ`` looks clockwise).
* A state is ``[ax, ay, bx, by, θ, avx, avy, bvx, bvy, ω]`` (float64; ``θ`` in ``(-π, π]``,
  velocities per second).
* An action ``a ∈ [-1, 1]²`` sets the PD target of one control step to
  ``agent + a · max_move`` (clipped to the table); a step simulates ``substeps`` physics steps
  of ``dt`` seconds (10 Hz control by default).
* The table's friction is quasi-static Coulomb friction on the block, made (as in
  Chipmunk's top-down demos) of a pivot joint and a gear joint to the table with no position
  correction and a bounded force: a pushed block stops a step or two after contact ends.
* Success (DINO-WM's test): block position within ``success_pos`` units of the goal's and
  angle within ``success_angle`` radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monde.errors import ConfigError

ARENA = 512.0
AGENT_RADIUS = 15.0
WALL_RADIUS = 5.0  # half-thickness of the border walls (their centre line is the border)
STATE_DIM = 10

# The T in a frame whose origin is the middle of the bar's top edge (y down), then shifted to
# its centre of mass.
BAR_W, BAR_H, STEM_W, STEM_H = 120.0, 30.0, 30.0, 90.0
_BAR_AREA, _STEM_AREA = BAR_W * BAR_H, STEM_W * STEM_H
COM_Y = (_BAR_AREA * BAR_H / 2 + _STEM_AREA * (BAR_H + STEM_H / 2)) / (_BAR_AREA + _STEM_AREA)
"""Depth of the T's centre of mass below the bar's top edge (≈ 40.71)."""
BAR_BOX = (-BAR_W / 2, BAR_W / 2, -COM_Y, BAR_H - COM_Y)
"""The bar as ``(x0, x1, y0, y1)`` in the body (centre-of-mass) frame."""
STEM_BOX = (-STEM_W / 2, STEM_W / 2, BAR_H - COM_Y, BAR_H + STEM_H - COM_Y)
"""The stem as ``(x0, x1, y0, y1)`` in the body frame."""
OUTLINE = np.array([[-60.0, 0.0], [60.0, 0.0], [60.0, 30.0], [15.0, 30.0], [15.0, 120.0],
                    [-15.0, 120.0], [-15.0, 30.0], [-60.0, 30.0]]) - [0.0, COM_Y]
"""The T's outline (body frame), clockwise on screen; edge ``i`` runs from vertex ``i`` to
``i + 1`` and its outward normal is ``(dy, −dx) / length``."""

BACKGROUND = (238, 236, 228)
BLOCK_COLOR = (84, 106, 138)  # slate grey-blue
AGENT_COLOR = (214, 52, 44)  # red
GOAL_COLOR = (150, 214, 150)  # light green


def wrap_angle(theta: np.ndarray) -> np.ndarray:
    """Angles wrapped to ``(-π, π]``."""
    theta = np.asarray(theta, dtype=np.float64)
    return theta - 2 * np.pi * np.ceil((theta - np.pi) / (2 * np.pi))


@dataclass
class PushTConfig:
    """Physics, rendering and task settings of the PushT world."""

    size: int = 64
    """Side of the rendered RGB image, in pixels (the 512-unit table fills it)."""
    max_move: float = 40.0
    """The PD target of a step is ``agent + action · max_move`` (units)."""
    substeps: int = 10
    """Physics steps per action (control step)."""
    dt: float = 0.01
    """Physics time step, in seconds (``substeps · dt`` is the control period)."""
    k_p: float = 100.0
    """Proportional gain of the agent's PD controller (1/s²)."""
    k_v: float = 20.0
    """Damping gain of the agent's PD controller (1/s); ``k_v = 2·sqrt(k_p)`` is critical."""
    agent_mass: float = 5.0
    """Mass of the agent's disc: heavier than the block, so the block barely pushes it back,
    but finite, so a block squeezed against a wall stops the agent instead of passing through."""
    block_mass: float = 1.0
    """Mass of the block (its moment of inertia follows from the T's shape)."""
    block_decel: float = 1000.0
    """Table friction on the block's sliding: a Coulomb force of ``block_mass · block_decel``
    (units/s²) against its motion, so a released block stops within about two steps."""
    block_angular_decel: float = 30.0
    """Table friction on the block's spin: a Coulomb torque of ``moment · block_angular_decel``
    (rad/s²)."""
    friction: float = 0.6
    """Coulomb friction coefficient between the agent, the block and the walls."""
    iterations: int = 20
    """Iterations of pymunk's contact solver per physics step."""
    velocity_scale: float = 150.0
    """Agent velocities are divided by this in :meth:`PushT.proprio`; full-speed moves reach
    ≈ 149 units/s, so values stay within about ±1."""
    success_pos: float = 20.0
    """Largest block position error (units) that counts as success."""
    success_angle: float = math.pi / 9
    """Largest block angle error (radians) that counts as success."""

    def validate(self) -> None:
        if self.size < 16:
            raise ConfigError("pusht: size must be at least 16 pixels")
        if not self.max_move > 0:
            raise ConfigError("pusht: max_move must be positive")
        if self.substeps < 1:
            raise ConfigError("pusht: substeps must be at least 1")
        if not self.dt > 0:
            raise ConfigError("pusht: dt must be positive")
        if not (self.k_p > 0 and self.k_v >= 0):
            raise ConfigError("pusht: k_p must be positive and k_v non-negative")
        if not (self.block_mass > 0 and self.agent_mass > 0):
            raise ConfigError("pusht: block_mass and agent_mass must be positive")
        if self.iterations < 1:
            raise ConfigError("pusht: iterations must be at least 1")
        if self.block_decel < 0 or self.block_angular_decel < 0 or self.friction < 0:
            raise ConfigError("pusht: block_decel, block_angular_decel and friction must be >= 0")
        if not self.velocity_scale > 0:
            raise ConfigError("pusht: velocity_scale must be positive")
        if not (self.success_pos > 0 and self.success_angle > 0):
            raise ConfigError("pusht: success_pos and success_angle must be positive")


def _box_verts(box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    x0, x1, y0, y1 = box
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _box_moment(box: tuple[float, float, float, float], density: float) -> float:
    """Moment of inertia about the body origin of a uniform rectangle."""
    x0, x1, y0, y1 = box
    w, h = x1 - x0, y1 - y0
    m = density * w * h
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return m * (w * w + h * h) / 12 + m * (cx * cx + cy * cy)


class _Sim:
    """One pymunk space with the walls, the agent and the block.

    :meth:`PushT.step` builds a fresh one for every row: pymunk keeps history in its cached
    contacts (warm starting), in bodies' position-correction velocities and in its spatial
    index, and only fresh objects make a step a pure function of the state.
    """

    def __init__(self, cfg: PushTConfig):
        import pymunk

        space = pymunk.Space()
        space.iterations = cfg.iterations
        static = space.static_body
        for a, b in (((0, 0), (ARENA, 0)), ((ARENA, 0), (ARENA, ARENA)),
                     ((ARENA, ARENA), (0, ARENA)), ((0, ARENA), (0, 0))):
            seg = pymunk.Segment(static, a, b, WALL_RADIUS)
            seg.friction = cfg.friction
            space.add(seg)
        self.agent = pymunk.Body(cfg.agent_mass, pymunk.moment_for_circle(cfg.agent_mass, 0, AGENT_RADIUS))
        disc = pymunk.Circle(self.agent, AGENT_RADIUS)
        disc.friction = cfg.friction
        density = cfg.block_mass / (_BAR_AREA + _STEM_AREA)
        moment = _box_moment(BAR_BOX, density) + _box_moment(STEM_BOX, density)
        self.block = pymunk.Body(cfg.block_mass, moment)
        parts = [pymunk.Poly(self.block, _box_verts(b)) for b in (BAR_BOX, STEM_BOX)]
        for p in parts:
            p.friction = cfg.friction
        # Table friction: velocity-only joints (max_bias 0) whose force is capped.
        slide = pymunk.PivotJoint(static, self.block, (0.0, 0.0), (0.0, 0.0))
        slide.max_bias, slide.max_force = 0.0, cfg.block_mass * cfg.block_decel
        spin = pymunk.GearJoint(static, self.block, 0.0, 1.0)
        spin.max_bias, spin.max_force = 0.0, moment * cfg.block_angular_decel
        space.add(self.agent, disc, self.block, *parts, slide, spin)
        self.space = space


class PushT:
    """Batched (row by row) PushT dynamics, numpy rendering and task sampling.

    See the module docstring for the conventions. States are ``[N, 10]`` float64, actions
    ``[N, 2]``.
    """

    action_dim = 2
    proprio_dim = 4
    state_dim = STATE_DIM

    def __init__(self, cfg: PushTConfig | None = None):
        self.cfg = cfg or PushTConfig()
        self.cfg.validate()
        try:
            import pymunk  # noqa: F401
        except ImportError as e:
            raise ConfigError("the pusht world needs pymunk: pip install 'monde[sim]'") from e
        c = self.cfg
        # Pixel centres in table units, and the width of one pixel (for anti-aliasing).
        self._px = ARENA / c.size
        self._grid = ((np.arange(c.size) + 0.5) * self._px).astype(np.float32)

    # ------------------------------------------------------------------ dynamics
    def clip_action(self, action: np.ndarray) -> np.ndarray:
        """Actions ``[N, 2]`` clipped to ``[-1, 1]``, NaN read as 0."""
        a = np.nan_to_num(np.asarray(action, dtype=np.float64).reshape(-1, 2),
                          nan=0.0, posinf=1.0, neginf=-1.0)
        return np.clip(a, -1.0, 1.0)

    def step(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Next states ``[N, 10]`` after one control step of actions ``[N, 2]``.

        A pure function of its inputs: each row is simulated in a freshly built pymunk space
        (see :class:`_Sim`), so no cached contact or solver state carries over.
        """
        c = self.cfg
        states = np.asarray(states, dtype=np.float64).reshape(-1, STATE_DIM)
        actions = self.clip_action(actions)
        if len(actions) != len(states):
            raise ValueError(f"pusht: {len(states)} states but {len(actions)} actions")
        lo, hi = AGENT_RADIUS, ARENA - AGENT_RADIUS
        targets = np.clip(states[:, :2] + actions * c.max_move, lo, hi)
        dt, kp, kv, m = c.dt, c.k_p, c.k_v, c.agent_mass
        out = np.empty_like(states)
        for i, s in enumerate(states.tolist()):
            sim = _Sim(c)
            agent, block, space = sim.agent, sim.block, sim.space
            agent.position, agent.velocity = (s[0], s[1]), (s[5], s[6])
            block.position, block.angle = (s[2], s[3]), s[4]
            block.velocity, block.angular_velocity = (s[7], s[8]), s[9]
            space.reindex_shapes_for_body(agent)
            space.reindex_shapes_for_body(block)
            tx, ty = float(targets[i, 0]), float(targets[i, 1])
            for _ in range(c.substeps):
                # PD force on the position the disc reaches this step (semi-implicit).
                (px, py), (vx, vy) = agent.position, agent.velocity
                px, py = px + vx * dt, py + vy * dt
                agent.force = (m * (kp * (tx - px) - kv * vx), m * (kp * (ty - py) - kv * vy))
                space.step(dt)
            (ax, ay), (avx, avy) = agent.position, agent.velocity
            (bx, by), (bvx, bvy) = block.position, block.velocity
            out[i] = (ax, ay, bx, by, block.angle, avx, avy, bvx, bvy, block.angular_velocity)
        out[:, 4] = wrap_angle(out[:, 4])
        return out

    def block_points(self, states: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Body-frame points ``[N, 2]`` (or ``[2]``) of each block, in world units ``[N, 2]``."""
        s = np.asarray(states, dtype=np.float64).reshape(-1, STATE_DIM)
        p = np.broadcast_to(np.asarray(points, dtype=np.float64), (len(s), 2))
        c, sn = np.cos(s[:, 4]), np.sin(s[:, 4])
        return np.stack([s[:, 2] + c * p[:, 0] - sn * p[:, 1],
                         s[:, 3] + sn * p[:, 0] + c * p[:, 1]], axis=1)

    def proprio(self, states: np.ndarray) -> np.ndarray:
        """``[N, 4]`` float32: ``[ax/512, ay/512, avx/scale, avy/scale]``."""
        s = np.asarray(states, dtype=np.float64).reshape(-1, STATE_DIM)
        return np.concatenate([s[:, :2] / ARENA, s[:, 5:7] / self.cfg.velocity_scale],
                              axis=1).astype(np.float32)

    def errors(self, states: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Block position error (units) and wrapped absolute angle error (radians), ``[N]``."""
        s = np.asarray(states, dtype=np.float64).reshape(-1, STATE_DIM)
        g = np.asarray(goals, dtype=np.float64).reshape(-1, STATE_DIM)
        pos = np.linalg.norm(s[:, 2:4] - g[:, 2:4], axis=1)
        ang = np.abs(wrap_angle(s[:, 4] - g[:, 4]))
        return pos, ang

    def success(self, states: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """``[N]`` bool: block within ``success_pos`` and ``success_angle`` of the goal's."""
        pos, ang = self.errors(states, goals)
        return (pos < self.cfg.success_pos) & (ang < self.cfg.success_angle)

    # ------------------------------------------------------------------ sampling
    def overlaps(self, states: np.ndarray) -> np.ndarray:
        """``[N]`` bool: the agent's disc touches the block."""
        s = np.asarray(states, dtype=np.float64).reshape(-1, STATE_DIM)
        d = s[:, :2] - s[:, 2:4]
        c, sn = np.cos(s[:, 4]), np.sin(s[:, 4])
        u, v = c * d[:, 0] + sn * d[:, 1], -sn * d[:, 0] + c * d[:, 1]  # agent in body frame
        hit = np.zeros(len(s), bool)
        for x0, x1, y0, y1 in (BAR_BOX, STEM_BOX):
            ex = np.maximum(np.maximum(x0 - u, u - x1), 0)
            ey = np.maximum(np.maximum(y0 - v, v - y1), 0)
            hit |= ex * ex + ey * ey < AGENT_RADIUS ** 2
        return hit

    def sample_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """States at rest ``[n, 10]``: agent uniform in ``[60, 452]²``, block centre of mass
        uniform in ``[120, 392]²``, angle uniform; samples where the two overlap are redrawn."""
        out = np.zeros((n, STATE_DIM))
        todo = np.arange(n)
        while len(todo):
            k = len(todo)
            out[todo, :2] = rng.uniform(60.0, ARENA - 60.0, (k, 2))
            out[todo, 2:4] = rng.uniform(120.0, ARENA - 120.0, (k, 2))
            out[todo, 4] = wrap_angle(rng.uniform(-np.pi, np.pi, k))
            todo = todo[self.overlaps(out[todo])]
        return out

    def sample_task(self, rng: np.random.Generator, n: int,
                    goal_steps: int = 25) -> tuple[np.ndarray, np.ndarray]:
        """Start and goal states ``[n, 10]`` each.

        The goal is where :class:`PushPolicy` takes the start in ``goal_steps`` steps
        (velocities zeroed), so it is reachable in that many steps; tasks whose start already
        succeeds on its goal are redrawn.
        """
        from monde.worlds.pusht_policies import PushPolicy

        starts, goals = np.zeros((n, STATE_DIM)), np.zeros((n, STATE_DIM))
        todo = np.arange(n)
        while len(todo):
            s0 = self.sample_states(rng, len(todo))
            policy = PushPolicy(self, rng, len(todo))
            s = s0
            for _ in range(goal_steps):
                s = self.step(s, policy(s))
            g = s.copy()
            g[:, 5:] = 0.0
            starts[todo], goals[todo] = s0, g
            todo = todo[self.success(s0, g)]
        return starts, goals

    # ------------------------------------------------------------------ rendering
    def _coverage(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Anti-aliased coverage ``[N, H, W]`` float32 in ``[0, 1]`` of the block and agent.

        Each pixel's coverage of an edge is a linear ramp of the signed distance (in pixels)
        from its centre to the edge, so shapes get one pixel of smooth border.
        """
        s = np.asarray(states, dtype=np.float32).reshape(-1, STATE_DIM)
        g, inv = self._grid, np.float32(1.0 / self._px)
        dx = g[None, None, :] - s[:, 2, None, None]  # [N, 1, W]
        dy = g[None, :, None] - s[:, 3, None, None]  # [N, H, 1]
        c, sn = np.cos(s[:, 4])[:, None, None], np.sin(s[:, 4])[:, None, None]
        u = c * dx + sn * dy  # pixel centres in the body frame
        v = c * dy - sn * dx
        block = None
        # The stem's box is extended up to the bar's middle so the union has no seam.
        stem = (STEM_BOX[0], STEM_BOX[1], (BAR_BOX[2] + BAR_BOX[3]) / 2, STEM_BOX[3])
        for x0, x1, y0, y1 in (BAR_BOX, stem):
            hx, hy = (x1 - x0) / 2, (y1 - y0) / 2
            cu, cv = np.float32(x0 + hx), np.float32(y0 + hy)
            cov_u = np.clip((hx - np.abs(u - cu)) * inv + 0.5, 0, 1)
            cov_v = np.clip((hy - np.abs(v - cv)) * inv + 0.5, 0, 1)
            cov = cov_u * cov_v
            block = cov if block is None else np.maximum(block, cov)
        ax = g[None, None, :] - s[:, 0, None, None]
        ay = g[None, :, None] - s[:, 1, None, None]
        d = np.sqrt(ax * ax + ay * ay)
        agent = np.clip((AGENT_RADIUS - d) * inv + 0.5, 0, 1)
        return block, agent

    def _compose(self, layers: list[tuple[np.ndarray, tuple[int, int, int]]]) -> np.ndarray:
        """Paint coverage layers ``[N, H, W]`` over the background, in order: ``[N, 3, H, W]``."""
        n, h, w = layers[0][0].shape
        img = np.empty((n, 3, h, w), np.float32)
        for ch in range(3):
            x = np.full((n, h, w), BACKGROUND[ch], np.float32)
            for cov, color in layers:
                x += cov * (np.float32(color[ch]) - x)
            img[:, ch] = x
        return img

    def render(self, states: np.ndarray, chunk: int = 128) -> np.ndarray:
        """Top-down RGB images ``[N, 3, size, size]`` uint8: block slate, agent red."""
        s = np.asarray(states, dtype=np.float64).reshape(-1, STATE_DIM)
        size = self.cfg.size
        out = np.empty((len(s), 3, size, size), np.uint8)
        for i in range(0, len(s), chunk):  # chunks keep the temporaries in cache
            block, agent = self._coverage(s[i:i + chunk])
            img = self._compose([(block, BLOCK_COLOR), (agent, AGENT_COLOR)])
            np.rint(img, out=img)
            out[i:i + chunk] = img
        return out

    def render_rgb(self, state: np.ndarray, goal: np.ndarray | None = None) -> np.ndarray:
        """One ``[size, size, 3]`` uint8 frame; with a goal, the goal's T in light green under it."""
        s = np.asarray(state, dtype=np.float64).reshape(1, STATE_DIM)
        block, agent = self._coverage(s)
        layers = []
        if goal is not None:
            gblock, _ = self._coverage(np.asarray(goal, dtype=np.float64).reshape(1, STATE_DIM))
            layers.append((gblock, GOAL_COLOR))
        layers += [(0.85 * block if goal is not None else block, BLOCK_COLOR), (agent, AGENT_COLOR)]
        img = self._compose(layers)
        return np.rint(img[0]).astype(np.uint8).transpose(1, 2, 0)
