"""Audio world models: built-in machine sounds, the spoken-digit set, or a folder of sound files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from monde.errors import ConfigError, DataError
from monde.jepa.causal_audio import CausalAudioConfig
from monde.jepa.config import EncoderConfig, MaskConfig, ModelConfig, PredictorConfig
from monde.jepa.spectral_audio import SpectralAudioConfig
from monde.train.config import TrainConfig
from monde.worlds.machine_sounds import MachineConfig, MachineSounds


@dataclass
class AudioDataConfig:
    """Where training sounds come from."""

    source: Literal["machine", "fsdd", "folder"] = "machine"
    """``machine``: normal sounds of the built-in machine world, generated on the fly;
    ``fsdd``: the training split (recordings 5–49) of the spoken-digit set; ``folder``: every
    WAV/FLAC/OGG file under ``folder``."""
    machine: MachineConfig = field(default_factory=MachineConfig)
    """The machine-sound world (``source=machine``)."""
    machine_pool: int = 0
    """``source=machine``: 0 draws fresh clips at every step; N > 0 generates N clips once and
    draws batches from them (steps then cost the network only, not the simulator)."""
    folder: str = ""
    """``folder``: a folder of sound files; ``fsdd``: the data folder (empty: search
    ``$MONDE_DATA/fsdd`` and ``../shared/data/fsdd``)."""


@dataclass
class AudioRunConfig:
    """A whole audio-pretraining run."""

    recipe: str = "audio-tiny"
    data: AudioDataConfig = field(default_factory=AudioDataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class CausalAudioRunConfig:
    """A whole frame-causal audio run (:mod:`monde.jepa.causal_audio`)."""

    recipe: str = "fsdd-causal"
    data: AudioDataConfig = field(default_factory=AudioDataConfig)
    model: CausalAudioConfig = field(default_factory=CausalAudioConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class SpectralAudioRunConfig:
    """A whole spectral audio run (:mod:`monde.jepa.spectral_audio`)."""

    recipe: str = "audio-spectral-tiny"
    data: AudioDataConfig = field(default_factory=AudioDataConfig)
    model: SpectralAudioConfig = field(default_factory=SpectralAudioConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _window(enc: EncoderConfig) -> int:
    return (enc.width - 1) * enc.hop


_POOL_STREAM = 2**31 - 1  # the pool's "rank" in the world's (seed, step, rank) streams


class MachineSource:
    """Normal machine sounds, one window per clip, a function of (seed, step, rank).

    ``pool > 0``: ``pool`` clips are generated once (in chunks, ``world.batch`` steps
    ``0, 1, …`` of a stream of their own) and every batch draws from them.
    """

    def __init__(self, cfg: MachineConfig, samples: int, seed: int = 0, pool: int = 0):
        self.world, self.n, self.seed = MachineSounds(cfg), samples, seed
        if round(cfg.seconds * cfg.rate) < samples:
            raise ConfigError(f"data.machine.seconds ({cfg.seconds}) is shorter than the "
                              f"model's window ({samples / cfg.rate:.3f} s)")
        if pool < 0:
            raise ConfigError(f"data.machine_pool must be >= 0, got {pool}")
        chunks = [self.world.batch(i, min(256, pool - i * 256), seed=seed, rank=_POOL_STREAM).audio
                  for i in range(-(-pool // 256))]
        self.pool = np.concatenate(chunks) if chunks else None

    def batch(self, step: int, batch_size: int, rank: int = 0) -> torch.Tensor:
        """``[B, N]`` float32 sound."""
        rng = np.random.default_rng([self.seed, step, rank, 1])
        if self.pool is None:
            audio = self.world.batch(step, batch_size, seed=self.seed, rank=rank).audio
        else:
            audio = self.pool[rng.integers(0, len(self.pool), size=batch_size)]
        off = rng.integers(0, audio.shape[1] - self.n + 1, size=batch_size)
        return torch.from_numpy(np.stack([a[o:o + self.n] for a, o in zip(audio, off)]))


class ClipsSource:
    """Random windows of a fixed set of sounds held in memory (short clips are zero-padded)."""

    def __init__(self, sounds: list[torch.Tensor], samples: int, seed: int = 0):
        if not sounds:
            raise DataError("no sounds to train on")
        self.sounds, self.n, self.seed = sounds, samples, seed

    def batch(self, step: int, batch_size: int, rank: int = 0) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, step, rank])
        out = torch.zeros(batch_size, self.n)
        for i, j in enumerate(rng.integers(0, len(self.sounds), size=batch_size)):
            s = self.sounds[j]
            if len(s) > self.n:
                o = int(rng.integers(0, len(s) - self.n + 1))
                out[i] = s[o:o + self.n]
            else:  # place a short clip at a random offset in silence
                o = int(rng.integers(0, self.n - len(s) + 1))
                out[i, o:o + len(s)] = s
        return out


def folder_sounds(folder: Path, rate: int) -> list[torch.Tensor]:
    """Every sound file under ``folder``, mono at ``rate``."""
    from monde.data.audio import AUDIO_EXTENSIONS, read_audio

    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; check the path")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise DataError(f"{folder}: no sound files ({', '.join(AUDIO_EXTENSIONS)}) here or below")
    return [read_audio(p, rate=rate)[0][0] for p in files]


def source_for(cfg: AudioRunConfig | CausalAudioRunConfig | SpectralAudioRunConfig):
    """The training source of a run (any audio model family)."""
    if isinstance(cfg, (CausalAudioRunConfig, SpectralAudioRunConfig)):
        rate, n = cfg.model.sample_rate, cfg.model.window_samples
    else:
        rate, n = cfg.model.encoder.sample_rate, _window(cfg.model.encoder)
    if cfg.data.source == "machine":
        if cfg.data.machine.rate != rate:
            raise ConfigError(f"data.machine.rate ({cfg.data.machine.rate}) must equal the "
                              f"model's sample rate ({rate})")
        return MachineSource(cfg.data.machine, n, seed=cfg.train.seed,
                             pool=cfg.data.machine_pool)
    if cfg.data.source == "fsdd":
        from monde.evals.datasets import find_data
        from monde.evals.fsdd import load_fsdd
        root = find_data("fsdd", Path(cfg.data.folder) if cfg.data.folder else None)
        return ClipsSource(load_fsdd(root, rate).train_sounds, n, seed=cfg.train.seed)
    if not cfg.data.folder:
        raise ConfigError(f"data.source=folder needs a folder: monde train {cfg.recipe} "
                          "--data DIR")
    return ClipsSource(folder_sounds(Path(cfg.data.folder).expanduser(), rate), n,
                       seed=cfg.train.seed)


def _model(rate: int, n_fft: int, hop: int, dim: int = 128, depth: int = 4) -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(modality="audio", channels=1, height=64, width=96, patch=8,
                              dim=dim, depth=depth, heads=4, sample_rate=rate, n_fft=n_fft,
                              hop=hop),
        predictor=PredictorConfig(dim=96, depth=3, heads=4),
        mask=MaskConfig(kind="audio"))


def audio_tiny() -> AudioRunConfig:
    """CPU-sized: normal machine sounds at 16 kHz, 0.95 s windows (64 mels × 96 frames, 96 tokens)."""
    return AudioRunConfig(
        recipe="audio-tiny", data=AudioDataConfig(source="machine"),
        model=_model(16000, 1024, 160),
        train=TrainConfig(steps=1500, batch_size=32, lr=1e-3, warmup_steps=100,
                          precision="fp32", checkpoint_every=250, log_every=25, diag_every=100))


def audio_user() -> AudioRunConfig:
    """Your own sounds: ``monde train audio --data FOLDER`` (16 kHz, 0.95 s windows)."""
    cfg = audio_tiny()
    cfg.recipe, cfg.data = "audio", AudioDataConfig(source="folder")
    return cfg


def audio_base() -> AudioRunConfig:
    """GPU-sized: a ViT-S-like encoder (384 wide, 12 blocks) on machine sounds, 20k steps."""
    cfg = audio_tiny()
    cfg.recipe = "audio-base"
    cfg.model = _model(16000, 1024, 160, dim=384, depth=12)
    cfg.model.predictor = PredictorConfig(dim=192, depth=6, heads=6)
    cfg.train = TrainConfig(steps=20000, batch_size=128, lr=5e-4, warmup_steps=1000,
                            checkpoint_every=500, log_every=50, diag_every=250)
    return cfg


def fsdd() -> AudioRunConfig:
    """The spoken-digit set's training recordings at 8 kHz, 0.95 s windows (monde eval fsdd)."""
    cfg = audio_tiny()
    cfg.recipe, cfg.data = "fsdd", AudioDataConfig(source="fsdd")
    cfg.model = _model(8000, 256, 80)
    return cfg


def run(cfg: AudioRunConfig, out: Path, *, quiet: bool = False, overwrite: bool = False) -> dict:
    """Train ``cfg`` into ``out`` (resuming if it holds the same run) and export the model."""
    from monde.jepa.model import JEPA
    from monde.recipes.runs import open_run, train_and_export

    enc = cfg.model.encoder
    if enc.modality != "audio" or enc.channels != 1:
        raise ConfigError("audio recipes need model.encoder.modality=audio with channels=1")
    if enc.height % enc.patch or enc.width % enc.patch:
        raise ConfigError("model.encoder.height (mel bands) and width (frames) must be "
                          "multiples of patch")
    data = source_for(cfg)
    run = open_run(cfg, out, overwrite)
    model = JEPA(cfg.model, seed=cfg.train.seed)
    meta = {"recipe": cfg.recipe, "modality": "audio", "sample_rate": enc.sample_rate}
    return train_and_export(run, cfg, model, data, meta, quiet=quiet,
                            data={"source": cfg.data.source},
                            params=sum(p.numel() for p in model.encoder.parameters()))


# ---------------------------------------------------------------- frame-causal family
def fsdd_causal() -> CausalAudioRunConfig:
    """Spoken digits with the frame-causal audio JEPA: 8 kHz, 0.95 s windows, 2500 steps on CPU.

    64 mels × 96 frames (10 ms hop) → 24 latent steps of 40 ms, each a 32 × 8 map; the
    predictor sees 6 steps (240 ms) and rolls out 3. ``monde eval fsdd`` probes the frozen
    step latents. 32 map channels rather than 16: picked on validation recordings 5–9
    (probes trained on 10–49), where they read digits better with all and with 10% of the
    labels than 16 channels (2 seeds) or 16 channels trained twice as long (docs/results.md).
    """
    model = CausalAudioConfig(sample_rate=8000, n_fft=256, hop=80, n_mels=64, frames=96,
                              map_channels=32)
    return CausalAudioRunConfig(
        recipe="fsdd-causal", data=AudioDataConfig(source="fsdd"), model=model,
        train=TrainConfig(steps=2500, batch_size=64, lr=1e-3, warmup_steps=100,
                          weight_decay=0.05, weight_decay_end=0.05, betas=(0.9, 0.999),
                          grad_clip=0.0, precision="auto", checkpoint_every=250, log_every=25,
                          diag_every=250))


def audio_causal_tiny() -> CausalAudioRunConfig:
    """Normal machine sounds with the frame-causal audio JEPA (monde eval machine), CPU.

    Batch 32: generating the sounds costs more than the networks (0.18 s vs 0.11 s per 64
    clips on 2 cores), and 2500 steps at batch 64 would take ~13 minutes.
    """
    cfg = fsdd_causal()
    cfg.recipe, cfg.data = "audio-causal-tiny", AudioDataConfig(source="machine")
    cfg.model = CausalAudioConfig(sample_rate=16000, n_fft=1024, hop=160, n_mels=64, frames=96)
    cfg.train.batch_size = 32
    return cfg


def audio_causal() -> CausalAudioRunConfig:
    """Your own sounds: ``monde train audio-causal --data FOLDER`` (16 kHz, 0.95 s windows)."""
    cfg = audio_causal_tiny()
    cfg.recipe, cfg.data = "audio-causal", AudioDataConfig(source="folder")
    return cfg


def run_causal(cfg: CausalAudioRunConfig, out: Path, *, quiet: bool = False,
               overwrite: bool = False) -> dict:
    """Train a frame-causal audio run into ``out`` (resuming if it holds the same run)."""
    from monde.jepa.causal_audio import CausalAudioJEPA
    from monde.recipes.runs import open_run, train_and_export

    cfg.model.validate()
    if cfg.train.steps < 1 or cfg.train.batch_size < 2:
        raise ConfigError("train.steps must be >= 1 and train.batch_size >= 2")
    data = source_for(cfg)
    run = open_run(cfg, out, overwrite)
    model = CausalAudioJEPA(cfg.model, seed=cfg.train.seed)
    meta = {"recipe": cfg.recipe, "modality": "audio", "sample_rate": cfg.model.sample_rate}
    return train_and_export(run, cfg, model, data, meta, quiet=quiet,
                            data={"source": cfg.data.source},
                            params=sum(p.numel() for p in model.parameters()))


# ---------------------------------------------------------------- spectral family
def audio_spectral_tiny() -> SpectralAudioRunConfig:
    """Normal machine sounds with the spectral audio JEPA (monde eval machine), CPU ~11 min.

    1-s windows at 16 kHz → tones and envelope spectrum on 320 log-frequency points (7.8 Hz –
    7.8 kHz, 32 per octave) → 80 latent positions of 32 channels; 3,000 steps of batch 64
    drawn from 8,192 normal clips generated once (the simulator would otherwise cost as much
    as the networks).
    """
    return SpectralAudioRunConfig(
        recipe="audio-spectral-tiny", data=AudioDataConfig(source="machine", machine_pool=8192),
        model=SpectralAudioConfig(),
        train=TrainConfig(steps=3000, batch_size=64, lr=1e-3, warmup_steps=150,
                          weight_decay=0.05, weight_decay_end=0.05, betas=(0.9, 0.999),
                          grad_clip=0.0, precision="auto", checkpoint_every=250, log_every=25,
                          diag_every=250))


def audio_spectral() -> SpectralAudioRunConfig:
    """Your own machine's sounds: ``monde train audio-spectral --data FOLDER`` (16 kHz, 1-s
    windows)."""
    cfg = audio_spectral_tiny()
    cfg.recipe, cfg.data = "audio-spectral", AudioDataConfig(source="folder")
    return cfg


def run_spectral(cfg: SpectralAudioRunConfig, out: Path, *, quiet: bool = False,
                 overwrite: bool = False, fit_windows: int = 1024) -> dict:
    """Train a spectral audio run into ``out`` (resuming if it holds the same run).

    The front end's per grid point statistics are fitted on the first ``fit_windows``
    training windows (the batches of steps 0, 1, …) before training and saved with the
    weights (a resumed run takes them from its checkpoint).
    """
    from monde.jepa.spectral_audio import SpectralAudioJEPA
    from monde.recipes.runs import open_run, train_and_export

    cfg.model.validate()
    if cfg.train.steps < 1 or cfg.train.batch_size < 2:
        raise ConfigError("train.steps must be >= 1 and train.batch_size >= 2")
    data = source_for(cfg)
    run = open_run(cfg, out, overwrite)
    model = SpectralAudioJEPA(cfg.model, seed=cfg.train.seed)
    chunk = min(256, fit_windows)
    model.fit_normalization(torch.cat([data.batch(i, chunk)
                                       for i in range(max(1, fit_windows // chunk))]))
    meta = {"recipe": cfg.recipe, "modality": "audio", "sample_rate": cfg.model.sample_rate}
    return train_and_export(run, cfg, model, data, meta, quiet=quiet,
                            data={"source": cfg.data.source},
                            params=sum(p.numel() for p in model.parameters()))
