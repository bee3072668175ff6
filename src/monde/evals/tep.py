"""Tennessee Eastman fault detection (the Braatz files): loader, frozen protocol, report, baselines.

A detector is anything that gives one anomaly score per sample of a 960-sample test run. It is
fitted on normal operation only (``d00.dat``), its alarm threshold is set on the normal test
run ``d00_te.dat`` at a fixed false-alarm rate, and each fault run ``dNN_te.dat`` (the fault is
introduced after sample 160) is scored by the fraction of samples 161–960 in alarm and by the
delay to the first alarm. A JEPA model plugs in by producing the same score arrays as
:func:`pca_spe_scores` (for example its per-step surprise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monde.errors import DataError
from monde.evals.protocol import protocol_record

NAMES = tuple([f"XMEAS_{i}" for i in range(1, 42)] + [f"XMV_{i}" for i in range(1, 12)])
N_VARS = 52
SAMPLE_MINUTES = 3


@dataclass(frozen=True)
class TEPProtocol:
    """Frozen TEP detection settings (change one → bump ``version``)."""

    name: str = "tep-detection"
    version: int = 1
    fault_start: int = 160
    """Index of the first faulty sample (the fault is introduced after sample 160, 1-based)."""
    run_length: int = 960
    """Samples per test run; detection is measured on indices ``fault_start:run_length``."""
    false_alarm: float = 0.01
    """Target false-alarm rate on the normal test run; the threshold is its (1 - this) quantile."""
    threshold_range: tuple[int, int] = (0, 960)
    """Samples of the normal test run whose scores set the threshold (the whole run)."""
    excluded: tuple[int, ...] = (3, 9, 15)
    """Faults known to be nearly undetectable, left out of ``mean_detection_excl``."""
    faults: tuple[int, ...] = tuple(range(1, 22))


@dataclass
class TEPData:
    """The Braatz TEP runs, float64, columns ``names`` (41 XMEAS then 11 XMV)."""

    train_normal: np.ndarray
    """``[500, 52]`` normal operation (``d00.dat``, stored transposed on disk)."""
    test_normal: np.ndarray
    """``[960, 52]`` normal test run (``d00_te.dat``)."""
    test_faults: dict[int, np.ndarray]
    """Fault number → ``[960, 52]`` test run (``dNN_te.dat``), fault from index 160 on."""
    train_faults: dict[int, np.ndarray] = field(default_factory=dict)
    """Fault number → ``[480, 52]`` training run (``dNN.dat``); empty unless asked for."""
    names: tuple[str, ...] = NAMES


def _read_run(path: Path, rows: int) -> np.ndarray:
    """One ``[rows, 52]`` run; a file stored as ``[52, rows]`` (``d00.dat``) is transposed."""
    if not path.is_file():
        raise DataError(f"missing TEP file {str(path)!r}; the folder should hold the Braatz "
                        "files d00.dat, d00_te.dat, d01.dat … d21_te.dat")
    try:
        run = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise DataError(f"cannot read TEP file {str(path)!r} as numbers: {err}") from err
    if run.shape[0] == N_VARS and run.shape[1] != N_VARS:
        run = run.T
    if run.shape != (rows, N_VARS):
        raise DataError(f"TEP file {str(path)!r} has shape {run.shape}, expected ({rows}, "
                        f"{N_VARS}); the file is truncated or not a Braatz TEP run")
    return run


def load_tep(root: str | Path, *, train_faults: bool = False) -> TEPData:
    """Read the Braatz TEP files from folder ``root`` (``train_faults``: also the dNN.dat runs)."""
    root = Path(root)
    tests = {k: _read_run(root / f"d{k:02d}_te.dat", 960) for k in range(1, 22)}
    trains = ({k: _read_run(root / f"d{k:02d}.dat", 480) for k in range(1, 22)}
              if train_faults else {})
    return TEPData(train_normal=_read_run(root / "d00.dat", 500),
                   test_normal=_read_run(root / "d00_te.dat", 960),
                   test_faults=tests, train_faults=trains)


def _alarms(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean alarms; NaN (a sample the detector cannot score) is never an alarm."""
    with np.errstate(invalid="ignore"):
        return np.greater(scores, threshold) & ~np.isnan(scores)


def threshold_from_normal(scores_normal: np.ndarray, protocol: TEPProtocol) -> float:
    """Alarm threshold: the ``1 - false_alarm`` quantile of the normal test run's scores.

    Rule (it reproduces data/README.md's baselines): all scored samples of ``d00_te`` in
    ``protocol.threshold_range`` (the whole run, NaN dropped), numpy's default linear
    interpolation between order statistics. Mean detection without faults 3/9/15: PCA-SPE
    0.7334 (README 0.733), DPCA lag 2 0.7682 (README 0.763). Taking only samples 160:960
    gives 0.7293 and 0.7654; no simple variant we tried matches both figures exactly.
    """
    lo, hi = protocol.threshold_range
    part = np.asarray(scores_normal, dtype=np.float64)[lo:hi]
    part = part[~np.isnan(part)]
    if part.size == 0:
        raise DataError("the normal run's scores are all NaN in the threshold range; the "
                        "detector must score at least some samples of d00_te")
    return float(np.quantile(part, 1.0 - protocol.false_alarm))


def _check_run(scores, what: str, protocol: TEPProtocol) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != (protocol.run_length,):
        raise DataError(f"{what} scores have shape {arr.shape}, expected ({protocol.run_length},)"
                        ": one score per sample of the run (NaN where it cannot score)")
    return arr


def detection(scores: np.ndarray, threshold: float, protocol: TEPProtocol) -> dict:
    """Detection rate over ``fault_start:run_length`` and delay to the first alarm in it."""
    alarms = _alarms(scores[protocol.fault_start:protocol.run_length], threshold)
    hits = np.flatnonzero(alarms)
    delay = int(hits[0]) if hits.size else None
    return {"detection_rate": float(alarms.mean()), "delay_samples": delay,
            "delay_minutes": delay * SAMPLE_MINUTES if delay is not None else None}


def tep_report(scores_normal: np.ndarray, scores_faults: Mapping[int, np.ndarray],
               protocol: TEPProtocol) -> dict:
    """Score a detector under ``protocol``; returns a JSON-able dict.

    ``scores_normal`` is ``[960]`` (one score per sample of ``d00_te``), ``scores_faults`` maps
    each fault of ``protocol.faults`` to its ``[960]`` scores; higher means more abnormal. NaN
    marks a sample the detector cannot score (the first samples of a windowed detector): it
    never raises an alarm, so it counts as a miss on a fault run and as no false alarm.

    Keys: ``threshold``; ``false_alarm_rate`` (normal run, threshold range) and
    ``false_alarm_rate_eval`` (normal run, samples 160:960); ``faults`` {number: {detection_rate,
    delay_samples, delay_minutes}}; ``mean_detection`` (all faults); ``mean_detection_excl``
    (without ``protocol.excluded``); ``protocol`` (name, version, hash, settings).
    """
    normal = _check_run(scores_normal, "normal run", protocol)
    missing = [k for k in protocol.faults if k not in scores_faults]
    if missing:
        raise DataError(f"no scores for faults {missing}; score every fault run of the protocol")
    faults = {k: _check_run(scores_faults[k], f"fault {k}", protocol) for k in protocol.faults}
    thr = threshold_from_normal(normal, protocol)
    lo, hi = protocol.threshold_range
    per = {k: detection(s, thr, protocol) for k, s in faults.items()}
    rates = {k: r["detection_rate"] for k, r in per.items()}
    kept = [r for k, r in rates.items() if k not in protocol.excluded]
    return {
        "protocol": protocol_record(protocol), "threshold": thr,
        "false_alarm_rate": float(_alarms(normal[lo:hi], thr).mean()),
        "false_alarm_rate_eval": float(
            _alarms(normal[protocol.fault_start:protocol.run_length], thr).mean()),
        "faults": per,
        "mean_detection": float(np.mean(list(rates.values()))),
        "mean_detection_excl": float(np.mean(kept)) if kept else None,
    }


# ---- baselines: fitted on train_normal only -------------------------------------------------

def _fit_pca(train: np.ndarray, n_components: int):
    """Train mean, std and the top ``n_components`` principal directions ``[F, k]``."""
    if not 0 < n_components < train.shape[1]:
        raise DataError(f"n_components must be in 1..{train.shape[1] - 1}, got {n_components}")
    mean = train.mean(axis=0)
    std = train.std(axis=0, ddof=1)
    std[std == 0] = 1.0  # a constant variable carries no information; keep it finite
    _, _, vt = np.linalg.svd((train - mean) / std, full_matrices=False)
    return mean, std, vt[:n_components].T


def _spe(x: np.ndarray, mean, std, basis) -> np.ndarray:
    """Squared prediction error (Q statistic): squared residual off the PCA subspace, ``[T]``."""
    z = (x - mean) / std
    resid = z - (z @ basis) @ basis.T
    return np.einsum("tf,tf->t", resid, resid)


def _map_runs(tests, fn):
    """Apply ``fn`` to each run of a dict or a list, keeping the container type."""
    if isinstance(tests, Mapping):
        return {k: fn(np.asarray(v, dtype=np.float64)) for k, v in tests.items()}
    if isinstance(tests, np.ndarray) and tests.ndim == 2:
        raise DataError("pass the test runs as a dict or a list of [T, 52] arrays, not one array")
    return [fn(np.asarray(v, dtype=np.float64)) for v in tests]


def pca_spe_scores(train: np.ndarray, tests: Mapping[int, np.ndarray] | Sequence[np.ndarray],
                   n_components: int = 9):
    """PCA SPE scores: z-score with ``train`` ``[T, 52]`` stats, keep ``n_components`` directions.

    Returns the scores ``[T_run]`` of each run in ``tests`` (dict → dict, list → list).
    """
    mean, std, basis = _fit_pca(np.asarray(train, dtype=np.float64), n_components)
    return _map_runs(tests, lambda x: _spe(x, mean, std, basis))


def lagged(x: np.ndarray, lag: int) -> np.ndarray:
    """Stack each sample with its ``lag`` predecessors: ``[T, F]`` → ``[T - lag, F * (lag + 1)]``.

    Row ``i`` is sample ``i + lag`` followed by samples ``i + lag - 1`` … ``i``.
    """
    n = x.shape[0]
    if n <= lag:
        raise DataError(f"a run of {n} samples is too short for lag {lag}")
    return np.hstack([x[lag - j:n - j] for j in range(lag + 1)])


def dpca_spe_scores(train: np.ndarray, tests: Mapping[int, np.ndarray] | Sequence[np.ndarray],
                    n_components: int = 9, lag: int = 2):
    """Dynamic PCA SPE: PCA SPE on samples stacked with their ``lag`` predecessors.

    Each run's first ``lag`` samples have no full history and get NaN (no alarm). Returns
    ``[T_run]`` scores per run, in the container type of ``tests``.
    """
    mean, std, basis = _fit_pca(lagged(np.asarray(train, dtype=np.float64), lag), n_components)

    def score(x):
        return np.concatenate([np.full(lag, np.nan), _spe(lagged(x, lag), mean, std, basis)])

    return _map_runs(tests, score)
