"""Energy, time and memory meters that say where every number comes from.

    with EnergyMeter() as meter:
        train(...)
    print(meter.result)            # a table; in a notebook, an HTML table

Every energy entry carries its provenance:

- `measured_counter`: a hardware energy counter read at both ends of the window (NVML's
  total-energy counter on Volta and newer GPUs, RAPL on Intel/AMD CPU packages);
- `sampled_power`: a power sensor polled about every 100 ms and integrated (trapezoid rule),
  for GPUs without a counter;
- `estimated`: a model, not a sensor (CodeCarbon's CPU = TDP x load without RAPL, its RAM
  constant);
- `unavailable`: with the reason.

`result.measured_joules()` adds the first two kinds only. Estimates are never added silently:
`result.total_joules(include_estimates=True)` must be asked for and is labelled.

CUDA is asynchronous, so the meter synchronises before every clock and counter read.
The NVML counter steps about every 100 ms: windows (and laps) shorter than ~1 s carry a warning.
"""
from __future__ import annotations

import contextlib
import functools
import html
import logging
import os
import platform
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import torch

MEASURED = ("measured_counter", "sampled_power")
SOURCES = (*MEASURED, "estimated", "unavailable")
SHORT_WINDOW_S = 1.0
DEFAULT_COUNTRY = "POL"        # the study's grid (Poland); pass country="FRA", "USA", ...
NVML_FI_DEV_POWER_INSTANT = 186  # nvml.h field id; not every binding version names it


@dataclass(frozen=True)
class DeviceEnergy:
    """Joules one device used in the window, and how we know."""
    device: str
    kind: str                      # "gpu", "cpu" or "ram"
    joules: float | None
    source: str
    backend: str
    reason: str | None = None
    idle_watts: float | None = None
    idle_subtracted_joules: float | None = None


@dataclass(frozen=True)
class GPUMemory:
    device: str
    peak_allocated_bytes: int
    peak_reserved_bytes: int
    nvml_used_bytes: int | None    # device-wide: includes the CUDA context and other processes


@dataclass(frozen=True)
class Lap:
    name: str
    wall_s: float
    joules: dict[str, float | None]
    warning: str | None = None


@dataclass(frozen=True)
class EnergyResult:
    wall_s: float
    gpu_time_s: float | None
    devices: tuple[DeviceEnergy, ...]
    gpu_memory: tuple[GPUMemory, ...]
    cpu_peak_rss_bytes: int | None
    cpu_rss_method: str
    cpu_rss_start_bytes: int | None
    co2_kg: float | None
    co2_method: str
    grid_g_per_kwh: float | None
    versions: dict
    device_names: tuple[str, ...]
    partial: bool = False
    laps: tuple[Lap, ...] = ()
    warnings: tuple[str, ...] = ()
    cross_checks: dict = field(default_factory=dict)   # second opinions, never summed

    def measured_joules_of(self, kind: str) -> float | None:
        """Measured joules of one kind of device ("gpu": what the study reported), or None
        when no device of that kind was measured."""
        values = [d.joules for d in self.devices
                  if d.kind == kind and d.source in MEASURED and d.joules is not None]
        return sum(values) if values else None

    def measured_joules(self) -> float:
        """Sum of hardware-measured entries only (counters and sampled power); 0 if none."""
        return sum(d.joules for d in self.devices if d.source in MEASURED and d.joules is not None)

    def idle_subtracted_joules(self) -> float | None:
        values = [d.idle_subtracted_joules for d in self.devices
                  if d.source in MEASURED and d.idle_subtracted_joules is not None]
        return sum(values) if values else None

    def estimated_joules(self) -> float:
        return sum(d.joules for d in self.devices if d.source == "estimated" and d.joules is not None)

    def total_joules(self, *, include_estimates: bool) -> tuple[float, str]:
        """(joules, label). With estimates the label says so; without, it is measured_joules()."""
        if not include_estimates:
            return self.measured_joules(), "measured only"
        return (self.measured_joules() + self.estimated_joules(),
                "measured + ESTIMATED (CodeCarbon models for CPU/RAM; not a measurement)")

    def to_dict(self) -> dict:
        return asdict(self)

    def rows(self) -> list[tuple[str, str, str, str]]:
        rows = [("wall time", f"{self.wall_s:.3f} s", "perf_counter after synchronize", "")]
        if self.gpu_time_s is not None:
            rows.append(("GPU time", f"{self.gpu_time_s:.3f} s", "CUDA events", ""))
        for d in self.devices:
            value = "-" if d.joules is None else f"{d.joules:.1f} J"
            if d.idle_subtracted_joules is not None:
                value += f" ({d.idle_subtracted_joules:.1f} J above idle {d.idle_watts:.0f} W)"
            rows.append((f"energy {d.device}", value, f"{d.source} ({d.backend})", d.reason or ""))
        for m in self.gpu_memory:
            nvml = "-" if m.nvml_used_bytes is None else f"{m.nvml_used_bytes / 2**20:.0f} MiB"
            rows.append((f"memory {m.device}", f"{m.peak_allocated_bytes / 2**20:.0f} MiB allocated, "
                         f"{m.peak_reserved_bytes / 2**20:.0f} MiB reserved (peak)",
                         "torch allocator", f"NVML device-wide used: {nvml}"))
        if self.cpu_peak_rss_bytes is not None:
            start = ("" if self.cpu_rss_start_bytes is None else
                     f"{(self.cpu_peak_rss_bytes - self.cpu_rss_start_bytes) / 2**20:.0f} MiB above the start")
            rows.append(("memory CPU", f"{self.cpu_peak_rss_bytes / 2**20:.0f} MiB peak RSS",
                         self.cpu_rss_method, start))
        co2 = "-" if self.co2_kg is None else f"{self.co2_kg * 1000:.4f} g"
        grid = "" if self.grid_g_per_kwh is None else f"grid {self.grid_g_per_kwh:.0f} g/kWh"
        rows.append(("CO2", co2, self.co2_method, grid))
        for lap in self.laps:
            joules = ", ".join(f"{k}: {'-' if v is None else f'{v:.1f} J'}" for k, v in lap.joules.items())
            rows.append((f"lap {lap.name}", f"{lap.wall_s:.3f} s", joules or "no measured energy",
                         lap.warning or ""))
        return rows

    def __str__(self) -> str:
        rows = [("quantity", "value", "how it was obtained", "note"), *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        extra = [f"measured total: {self.measured_joules():.1f} J"
                 + (" (PARTIAL: the block raised)" if self.partial else "")]
        extra += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines + extra)

    def _repr_html_(self) -> str:
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                        for r in self.rows())
        notes = "".join(f"<p>warning: {html.escape(w)}</p>" for w in self.warnings)
        return ("<table><tr><th>quantity</th><th>value</th><th>how it was obtained</th><th>note</th></tr>"
                f"{cells}</table><p>measured total: {self.measured_joules():.1f} J"
                f"{' (PARTIAL)' if self.partial else ''}</p>{notes}")


# ============================================================================ backends
# Each backend meters some devices. start() fixes the zero; snapshot() returns the energy of
# every device since start as {device: (joules or None, reason)}. Laps are snapshot differences.

class NvmlCounter:
    """NVML's total-energy counter (mJ since driver load): energy = end - start."""
    backend, source, kind = "nvml_counter", "measured_counter", "gpu"

    def __init__(self, nvml, handles: dict[str, object]):
        self.nvml, self.handles = nvml, handles
        self.devices = list(handles)

    def start(self) -> None:
        self.start_mj = {d: self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for d, h in self.handles.items()}

    def snapshot(self) -> dict[str, tuple[float | None, str | None]]:
        out = {}
        for device, handle in self.handles.items():
            try:
                delta = self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle) - self.start_mj[device]
            except Exception as err:  # noqa: BLE001 - a failed read is recorded, never raised
                out[device] = (None, f"counter read failed: {err}")
                continue
            out[device] = ((delta / 1000.0, None) if delta >= 0 else
                           (None, "energy counter went backwards (reset by the driver): window invalid"))
        return out


class PowerSampler:
    """Polls power (W) every `interval` s in a thread and integrates with the trapezoid rule."""
    backend, source, kind = "nvml_sampler", "sampled_power", "gpu"

    def __init__(self, read_watts: dict[str, Callable[[], float]], interval: float = 0.1,
                 clock: Callable[[], float] = time.perf_counter):
        self.read_watts, self.interval, self.clock = read_watts, interval, clock
        self.devices = list(read_watts)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def sample(self) -> float:
        with self._lock:
            now = self.clock()
            for device, read in self.read_watts.items():
                try:
                    self.samples[device].append((now, float(read())))
                except Exception as err:  # noqa: BLE001
                    self.errors[device] = f"power read failed: {err}"
            return now

    def start(self, thread: bool = True) -> None:
        """Zero the integral and take the first sample; poll in a thread unless thread=False."""
        self.samples = {d: [] for d in self.read_watts}
        self.errors: dict[str, str] = {}
        self.t0 = self.sample()
        self._stop = threading.Event()
        if thread:
            self._thread = threading.Thread(target=self._run, name="fwdlib-power-sampler", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def snapshot(self) -> dict[str, tuple[float | None, str | None]]:
        self.sample()
        out = {}
        for device, samples in self.samples.items():
            if len(samples) < 2:
                out[device] = (None, self.errors.get(device, "fewer than two power samples"))
            else:
                out[device] = (integrate(samples, self.t0, samples[-1][0]), None)
        return out


def integrate(samples: list[tuple[float, float]], t_start: float, t_end: float) -> float:
    """Trapezoid integral of (time, watts) samples over [t_start, t_end], in joules."""
    inside = [(t, w) for t, w in samples if t_start <= t <= t_end]
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(inside, inside[1:]))


class Rapl:
    """RAPL package counters under /sys/class/powercap (µJ, wrapping at max_energy_range_uj).

    Only top-level package domains (intel-rapl:N) are read: their sub-domains (core, uncore,
    dram) are parts of the package and would be counted twice; psys overlaps them too.
    """
    backend, source, kind = "rapl", "measured_counter", "cpu"

    def __init__(self, root: str | Path = "/sys/class/powercap", opener=open):
        self.root, self.opener = Path(root), opener
        self.domains = {}
        for path in sorted(self.root.glob("*rapl:*")):
            if path.name.count(":") != 1:                   # a sub-domain like intel-rapl:0:1
                continue
            name = self._read(path / "name").strip()
            if name.startswith("package"):
                self.domains[f"cpu {name}"] = path
        if not self.domains:
            raise RuntimeError(f"no RAPL package domains under {self.root}")
        self.devices = list(self.domains)
        for path in self.domains.values():                  # fail now if unreadable (permissions)
            int(self._read(path / "energy_uj"))

    def _read(self, path: Path) -> str:
        with self.opener(path) as f:
            return f.read()

    def start(self) -> None:
        self.max_uj = {d: int(self._read(p / "max_energy_range_uj")) for d, p in self.domains.items()}
        self.last = {d: int(self._read(p / "energy_uj")) for d, p in self.domains.items()}
        self.total = dict.fromkeys(self.domains, 0)

    def snapshot(self) -> dict[str, tuple[float | None, str | None]]:
        """Accumulate since the last read; a smaller reading means the counter wrapped once.
        (Read at least every wrap period - hours at desktop power - to stay exact.)"""
        for device, path in self.domains.items():
            now = int(self._read(path / "energy_uj"))
            delta = now - self.last[device]
            if delta < 0:
                delta += self.max_uj[device]
            self.total[device] += delta
            self.last[device] = now
        return {d: (uj / 1e6, None) for d, uj in self.total.items()}


@functools.lru_cache(maxsize=1)
def _codecarbon_countries() -> frozenset[str]:
    """The countries CodeCarbon has a grid mix for, read once (empty if it cannot be read)."""
    try:
        from codecarbon.input import DataSource
        return frozenset(DataSource().get_global_energy_mix_data())
    except Exception:  # noqa: BLE001 - a check, not a requirement
        return frozenset()


def check_country(country: str, stacklevel: int = 3) -> None:
    """Warn when CodeCarbon has no grid mix for `country`: it would silently use the world
    average. (Nothing is said when CodeCarbon's own data cannot be read.)"""
    known = _codecarbon_countries()
    if known and country not in known:
        warnings.warn(f"CodeCarbon knows no country {country!r} (ISO 3166 alpha-3, e.g. POL, FRA, USA): "
                      "its CO2 figure would use the world-average grid. Pass a known code.", stacklevel=stacklevel)


class CodeCarbon:
    """CodeCarbon's OfflineEmissionsTracker: CO2 for the window from a national grid factor.

    Never the online tracker (it probes cloud metadata addresses and, offline, silently falls
    back to another country). No output files unless `output_dir` is given. Its CPU figure
    without RAPL is TDP x load and its RAM figure a constant power: both are estimates.
    """
    backend = "codecarbon"

    def __init__(self, country: str = DEFAULT_COUNTRY, output_dir: str | None = None):
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self.country = country
        options = dict(log_level="error", allow_multiple_runs=True, measure_power_secs=1)
        try:   # CodeCarbon 3.x names its outputs; 2.x used the save_to_file flag
            from codecarbon.emissions_tracker import OutputMethod
            options["output_methods"] = [OutputMethod.CSV] if output_dir is not None else []
        except ImportError:
            options["save_to_file"] = output_dir is not None
        if output_dir is not None:
            options["output_dir"] = str(output_dir)
        with _quiet_codecarbon():
            self.tracker = OfflineEmissionsTracker(country_iso_code=country, **options)

    def start(self) -> None:
        with _quiet_codecarbon():
            self.tracker.start()


    def stop(self) -> "Emissions":
        with _quiet_codecarbon():
            emissions = self.tracker.stop()
        data = getattr(self.tracker, "final_emissions_data", None)
        method = f"CodeCarbon {_version('codecarbon')} OfflineEmissionsTracker, country {self.country}"
        if emissions is None or data is None:
            return Emissions(None, method + ": FAILED (tracker returned None)", reason="tracker returned None")
        kwh = data.energy_consumed
        return Emissions(float(emissions), method, emissions / kwh * 1000 if kwh else None,
                         data.cpu_energy * 3.6e6, data.ram_energy * 3.6e6, data.gpu_energy * 3.6e6)


class Emissions(NamedTuple):
    """What CodeCarbon's tracker reports for a window (joules are its estimates; reason: why not)."""
    co2_kg: float | None
    method: str
    grid_g_per_kwh: float | None = None
    cpu_j: float | None = None
    ram_j: float | None = None
    gpu_j: float | None = None
    reason: str | None = None


@contextlib.contextmanager
def _quiet_codecarbon():
    """CodeCarbon logs at INFO while it starts, before its own log_level applies."""
    logger = logging.getLogger("codecarbon")
    previous, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = previous


def _version(package: str) -> str:
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:  # noqa: BLE001
        return "unknown"


# ============================================================================ probing

def cuda_devices() -> list[tuple[str, str, str]]:
    """(label, name, uuid) of every CUDA device torch can see."""
    out = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append((f"cuda:{i}", props.name, str(getattr(props, "uuid", ""))))
    return out


def _strip_uuid(uuid) -> str:
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    return text.lower().removeprefix("gpu-").removeprefix("mig-")


def probe_gpus(nvml, devices: list[tuple[str, str, str]], interval: float):
    """Backends for the torch-visible GPUs plus entries for those that cannot be metered."""
    if not devices:
        return [], [DeviceEnergy("GPU", "gpu", None, "unavailable", "nvml", "no CUDA device visible to torch")], {}
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError as err:
            return [], [DeviceEnergy(label, "gpu", None, "unavailable", "nvml",
                                     f"NVML bindings not importable ({err}); pip install nvidia-ml-py")
                        for label, _, _ in devices], {}
    try:
        nvml.nvmlInit()
        handles_by_uuid = {}
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            handles_by_uuid[_strip_uuid(nvml.nvmlDeviceGetUUID(handle))] = handle
    except Exception as err:  # noqa: BLE001 - e.g. NVMLError_LibraryNotFound
        return [], [DeviceEnergy(label, "gpu", None, "unavailable", "nvml", f"NVML failed: {err}")
                    for label, _, _ in devices], {}
    counters, sampled, missing, matched = {}, {}, [], {}
    for label, name, uuid in devices:
        handle = handles_by_uuid.get(_strip_uuid(uuid))
        if handle is None:
            missing.append(DeviceEnergy(f"{label} ({name})", "gpu", None, "unavailable", "nvml",
                                        f"no NVML device with UUID {uuid}"))
            continue
        key = f"{label} ({name})"
        matched[key] = handle
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            counters[key] = handle
        except Exception:  # noqa: BLE001 - not supported before Volta: sample power instead
            sampled[key] = _power_reader(nvml, handle)
    backends = []
    if counters:
        backends.append(NvmlCounter(nvml, counters))
    if sampled:
        backends.append(PowerSampler(sampled, interval))
    return backends, missing, matched


def _power_reader(nvml, handle) -> Callable[[], float]:
    """Watts from the instantaneous power field where the driver has it, else the averaged
    nvmlDeviceGetPowerUsage (a 1 s average: it under-counts short bursts)."""
    try:
        value = nvml.nvmlDeviceGetFieldValues(handle, [NVML_FI_DEV_POWER_INSTANT])[0]
        if getattr(value, "nvmlReturn", 0) == 0:
            def instant():
                v = nvml.nvmlDeviceGetFieldValues(handle, [NVML_FI_DEV_POWER_INSTANT])[0]
                return v.value.uiVal / 1000.0
            instant()
            return instant
    except Exception:  # noqa: BLE001
        pass
    return lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0


def probe_rapl(root="/sys/class/powercap", opener=open):
    try:
        return [Rapl(root, opener)], []
    except Exception as err:  # noqa: BLE001 - absent (VMs, Colab, macOS) or permission denied
        return [], [DeviceEnergy("CPU packages", "cpu", None, "unavailable", "rapl",
                                 f"RAPL not readable: {err}")]


# ============================================================================ the meter

class EnergyMeter:
    """Measure a window of work: time, energy per device, memory, CO2.

    idle_s: seconds of idle baseline taken before the window (0 = none).
    co2: run CodeCarbon's offline tracker around the window (its ~1.5 s start-up is outside
    the timed region). cross_check: also sample the power of GPUs that have a counter, and
    keep CodeCarbon's GPU figure, in `result.cross_checks` (never added to the totals).
    nvml / rapl_root / rapl_opener / cuda_device_list: injection points for tests and unusual
    machines.
    """

    def __init__(self, *, idle_s: float = 0.0, co2: bool = True, country: str = DEFAULT_COUNTRY,
                 codecarbon_output_dir: str | None = None, sample_interval: float = 0.1,
                 nvml=None, rapl_root: str | Path = "/sys/class/powercap", rapl_opener=open,
                 cuda_device_list: list[tuple[str, str, str]] | None = None, cross_check: bool = False):
        self.idle_s, self.co2, self.country = idle_s, co2, country
        if co2:
            check_country(country)
        self.codecarbon_output_dir = codecarbon_output_dir
        devices = cuda_devices() if cuda_device_list is None else cuda_device_list
        self.cuda = bool(devices) and torch.cuda.is_available()
        gpu_backends, self.unavailable, self.nvml_handles = probe_gpus(nvml, devices, sample_interval)
        self.nvml = nvml if nvml is not None else (_import_pynvml() if self.nvml_handles else None)
        rapl_backends, rapl_missing = probe_rapl(rapl_root, rapl_opener)
        self.unavailable += rapl_missing
        self.backends = gpu_backends + rapl_backends
        counters = [b for b in gpu_backends if isinstance(b, NvmlCounter)]
        self._cross_sampler = None
        if cross_check and counters:
            readers = {d: _power_reader(self.nvml, h) for d, h in counters[0].handles.items()}
            self._cross_sampler = PowerSampler(readers, sample_interval)
        self.device_names = tuple(f"{label} ({name})" for label, name, _ in devices) + (_cpu_name(),)
        self.result: EnergyResult | None = None
        self._laps: list[Lap] = []
        self._warnings: list[str] = []
        self._state = "new"                    # then "running", then "done": one window per meter

    # -- context manager
    def __enter__(self) -> "EnergyMeter":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop(partial=exc_type is not None)

    def start(self) -> "EnergyMeter":
        if self._state != "new":
            raise RuntimeError("this EnergyMeter has already measured a window; make a new EnergyMeter() "
                               "for the next one, so that its laps and totals do not mix with the old ones")
        self._state = "running"
        self._tracker, self._co2_error = None, None
        if self.co2:
            try:
                self._tracker = CodeCarbon(self.country, self.codecarbon_output_dir)
            except Exception as err:  # noqa: BLE001 - CO2 is optional, training is not
                self._tracker, self._co2_error = None, f"CodeCarbon failed to start: {err}"
        self._idle_watts = self._idle_baseline() if self.idle_s > 0 else {}
        if self._tracker is not None:   # after the idle baseline: CO2 covers the energy's window
            try:
                self._tracker.start()
            except Exception as err:  # noqa: BLE001
                self._tracker, self._co2_error = None, f"CodeCarbon failed to start: {err}"
        self._sync()
        if self.cuda:
            for i in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(i)
            self._event_start = torch.cuda.Event(enable_timing=True)
            self._event_start.record()
        self._rss_method = _reset_peak_rss()
        self._rss_start = _status_bytes("VmRSS")
        self._started = []
        for backend in self.backends:
            try:
                backend.start()
                self._started.append(backend)
            except Exception as err:  # noqa: BLE001
                self.unavailable += [DeviceEnergy(d, backend.kind, None, "unavailable", backend.backend,
                                                  f"start failed: {err}") for d in backend.devices]
        if self._cross_sampler is not None:
            self._cross_sampler.start()
        self._t0 = self._lap_t = time.perf_counter()
        self._lap_energy = {d: (0.0, None) for backend in self._started for d in backend.devices}
        return self

    def lap(self, name: str) -> Lap:
        """Close a sub-window (an epoch, say) and start the next."""
        self._require_running("lap")
        self._sync()
        now, energy = time.perf_counter(), self._snapshot()
        seconds = now - self._lap_t
        joules = {d: (None if energy[d][0] is None or self._lap_energy.get(d, (None,))[0] is None
                      else energy[d][0] - self._lap_energy[d][0]) for d in energy}
        warning = (f"lap shorter than {SHORT_WINDOW_S:.0f} s: the NVML counter steps every ~100 ms, "
                   "so its energy is coarse" if seconds < SHORT_WINDOW_S else None)
        lap = Lap(name, seconds, joules, warning)
        self._laps.append(lap)
        self._lap_t, self._lap_energy = now, energy
        return lap

    def _require_running(self, what: str) -> None:
        if self._state == "new":
            raise RuntimeError(f"EnergyMeter.{what}() before start(): call meter.start() first, "
                               "or use `with EnergyMeter() as meter:`")
        if self._state == "done":
            raise RuntimeError(f"EnergyMeter.{what}() after stop(): this meter has finished; "
                               "its result is in meter.result")

    def stop(self, partial: bool = False) -> EnergyResult:
        self._require_running("stop")
        self._state = "done"
        self._sync()
        wall = time.perf_counter() - self._t0
        energy = self._snapshot()
        gpu_time = None
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            gpu_time = self._event_start.elapsed_time(end) / 1000.0
        for backend in self._started:
            if hasattr(backend, "stop"):
                backend.stop()
        entries = list(self.unavailable)
        for backend in self._started:
            for device in backend.devices:
                joules, reason = energy.get(device, (None, "no reading"))
                idle = self._idle_watts.get(device)
                entries.append(DeviceEnergy(
                    device, backend.kind, joules, backend.source if joules is not None else "unavailable",
                    backend.backend, reason, idle,
                    None if idle is None or joules is None else joules - idle * wall))
        warnings = list(self._warnings)
        if wall < SHORT_WINDOW_S:
            warnings.append(f"window of {wall:.3f} s is shorter than {SHORT_WINDOW_S:.0f} s: "
                            "counter-based energy is coarse (the NVML counter steps every ~100 ms)")
        co2, co2_method, grid = None, self._co2_error or "disabled (co2=False)", None
        cross_checks = {}
        if self._cross_sampler is not None:
            cross_checks["sampled_power_j"] = {d: j for d, (j, _) in self._cross_sampler.snapshot().items()}
            self._cross_sampler.stop()
        if self._tracker is not None:
            try:
                emitted = self._tracker.stop()
            except Exception as err:  # noqa: BLE001
                emitted = Emissions(None, f"CodeCarbon failed: {err}", reason=str(err))
            co2, co2_method, grid = emitted.co2_kg, emitted.method, emitted.grid_g_per_kwh
            if emitted.reason is None:
                cross_checks["codecarbon_gpu_j"] = emitted.gpu_j
                entries.append(DeviceEnergy("CPU (CodeCarbon model)", "cpu", emitted.cpu_j, "estimated", "codecarbon",
                                            "TDP x CPU load model unless CodeCarbon found RAPL"))
                entries.append(DeviceEnergy("RAM (CodeCarbon model)", "ram", emitted.ram_j, "estimated", "codecarbon",
                                            "constant power per GB of RAM"))
            else:
                warnings.append(f"CO2 not available: {emitted.reason}")
        rss = _peak_rss_bytes()
        rss_start = self._rss_start if self._rss_method.startswith("VmHWM") else None
        self.result = EnergyResult(
            wall_s=wall, gpu_time_s=gpu_time, devices=tuple(entries), gpu_memory=self._gpu_memory(),
            cpu_peak_rss_bytes=rss, cpu_rss_method=self._rss_method, cpu_rss_start_bytes=rss_start,
            co2_kg=co2, co2_method=co2_method,
            grid_g_per_kwh=grid, versions=_versions(), device_names=self.device_names,
            partial=partial, laps=tuple(self._laps), warnings=tuple(warnings), cross_checks=cross_checks)
        return self.result

    # -- helpers
    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def _snapshot(self) -> dict[str, tuple[float | None, str | None]]:
        out = {}
        for backend in self._started:
            try:
                out.update(backend.snapshot())
            except Exception as err:  # noqa: BLE001
                for device in backend.devices:
                    out[device] = (None, f"read failed: {err}")
        return out

    def _idle_baseline(self) -> dict[str, float]:
        """Average watts of each metered device over `idle_s` seconds of doing nothing."""
        self._sync()
        started = time.perf_counter()
        running = []
        for backend in self.backends:
            try:                 # the same guard as start(): a backend that fails is left out
                backend.start()
                running.append(backend)
            except Exception:  # noqa: BLE001 - start() reports the failure for the measured window
                continue
        time.sleep(self.idle_s)
        elapsed = time.perf_counter() - started
        watts = {}
        for backend in running:
            for device, (joules, _) in backend.snapshot().items():
                if joules is not None:
                    watts[device] = joules / elapsed
            if hasattr(backend, "stop"):
                backend.stop()
        return watts

    def _gpu_memory(self) -> tuple[GPUMemory, ...]:
        if not self.cuda:
            return ()
        out = []
        for i in range(torch.cuda.device_count()):
            label = f"cuda:{i} ({torch.cuda.get_device_name(i)})"
            used = None
            handle = self.nvml_handles.get(label)
            if handle is not None and self.nvml is not None:
                try:
                    used = int(self.nvml.nvmlDeviceGetMemoryInfo(handle).used)
                except Exception:  # noqa: BLE001
                    used = None
            out.append(GPUMemory(label, torch.cuda.max_memory_allocated(i),
                                 torch.cuda.max_memory_reserved(i), used))
        return tuple(out)


def _import_pynvml():
    try:
        import pynvml
        return pynvml
    except ImportError:
        return None


def _reset_peak_rss() -> str:
    """Reset Linux's VmHWM so the peak covers this window; else fall back to the lifetime peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "VmHWM from /proc/self/status, reset at the window start"
    except OSError:
        return "ru_maxrss: peak over the whole process lifetime (could not reset)"


def _status_bytes(field: str) -> int | None:
    """A memory line of /proc/self/status (Linux), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _peak_rss_bytes() -> int | None:
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource            # POSIX only: on Windows there is no lifetime peak to read
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024   # bytes on macOS, KiB on Linux


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"cpu ({line.split(':', 1)[1].strip()}, {os.cpu_count()} logical)"
    except OSError:
        pass
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} logical)"


def _versions() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "codecarbon": _version("codecarbon"),
            "nvidia-ml-py": _version("nvidia-ml-py"), "fwdlib": _version("fwdlib")}
