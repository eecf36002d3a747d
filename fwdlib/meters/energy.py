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

import time
from pathlib import Path

import torch

from .backends import (CodeCarbon, Emissions, NvmlCounter, PowerSampler, check_country, cuda_devices, integrate,
                       power_reader, probe_gpus, probe_rapl)
from .process import cpu_name, peak_rss_bytes, reset_peak_rss, run_versions, status_bytes
from .readings import (DEFAULT_COUNTRY, MEASURED, SHORT_WINDOW_S, SOURCES, DeviceEnergy, EnergyResult, GPUMemory,
                      Lap)

# What a lesson reaches as energy.NAME: the meter, what it returns, and the trapezoid rule it uses.
__all__ = ["DEFAULT_COUNTRY", "MEASURED", "SOURCES", "DeviceEnergy", "EnergyMeter", "EnergyResult", "GPUMemory",
           "Lap", "gpus_of", "integrate"]



class EnergyMeter:
    """Measure a window of work: time, energy per device, memory, CO2.

    idle_s: seconds of idle baseline taken before the window (0 = none).
    co2: run CodeCarbon's offline tracker around the window (its ~1.5 s start-up is outside
    the timed region). cross_check: also sample the power of GPUs that have a counter, and
    keep CodeCarbon's GPU figure, in `result.cross_checks` (never added to the totals).
    device: the device the measured work runs on ("cpu", "cuda", "cuda:1", "mps"): only that
    GPU is metered (none for cpu or mps; the others are listed as not metered, never added);
    None meters every visible GPU (a whole-machine reading).
    nvml / rapl_root / rapl_opener / cuda_device_list: injection points for tests and unusual
    machines.
    """

    def __init__(self, *, idle_s: float = 0.0, co2: bool = True, country: str = DEFAULT_COUNTRY,
                 codecarbon_output_dir: str | None = None, sample_interval: float = 0.1,
                 nvml=None, rapl_root: str | Path = "/sys/class/powercap", rapl_opener=open,
                 cuda_device_list: list[tuple[str, str, str]] | None = None, cross_check: bool = False,
                 device: str | None = None):
        self.idle_s, self.co2, self.country = idle_s, co2, country
        if co2:
            check_country(country)
        self.codecarbon_output_dir = codecarbon_output_dir
        visible = cuda_devices() if cuda_device_list is None else cuda_device_list
        devices = gpus_of(device, visible)
        self.cuda = bool(devices) and torch.cuda.is_available()
        self.cuda_indices = [int(label.split(":")[1]) for label, _, _ in devices]
        gpu_backends, self.unavailable, self.nvml_handles = (
            probe_gpus(nvml, devices, sample_interval) if devices or not visible else ([], [], {}))
        self.unavailable += [DeviceEnergy(f"{label} ({name})", "gpu", None, "unavailable", "nvml",
                                          f"not metered: the run uses the {device} device")
                             for label, name, uuid in visible if (label, name, uuid) not in devices]
        self.nvml = nvml if nvml is not None else (_import_pynvml() if self.nvml_handles else None)
        rapl_backends, rapl_missing = probe_rapl(rapl_root, rapl_opener)
        self.unavailable += rapl_missing
        self.backends = gpu_backends + rapl_backends
        counters = [b for b in gpu_backends if isinstance(b, NvmlCounter)]
        self._cross_sampler = None
        if cross_check and counters:
            readers = {d: power_reader(self.nvml, h) for d, h in counters[0].handles.items()}
            self._cross_sampler = PowerSampler(readers, sample_interval)
        self.device_names = tuple(f"{label} ({name})" for label, name, _ in devices) + (cpu_name(),)
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
            for i in self.cuda_indices:
                torch.cuda.reset_peak_memory_stats(i)
            self._event_start = torch.cuda.Event(enable_timing=True)
            self._event_start.record()
        self._rss_method = reset_peak_rss()
        self._rss_start = status_bytes("VmRSS")
        # the window opens before any backend's first reading, so every reading lies inside it
        self._t0 = self._lap_t = time.perf_counter()
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
        # Sampler threads end first; the final snapshot takes their last reading and the window
        # closes after it, so the energy integrates exactly the span that the time measures.
        for backend in (*self._started, self._cross_sampler):
            if hasattr(backend, "stop"):
                backend.stop()
        energy = self._snapshot()
        cross = self._cross_sampler.snapshot() if self._cross_sampler is not None else None
        wall = time.perf_counter() - self._t0
        gpu_time = None
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            gpu_time = self._event_start.elapsed_time(end) / 1000.0
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
        if cross is not None:
            cross_checks["sampled_power_j"] = {d: j for d, (j, _) in cross.items()}
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
        rss = peak_rss_bytes()
        rss_start = self._rss_start if self._rss_method.startswith("VmHWM") else None
        self.result = EnergyResult(
            wall_s=wall, gpu_time_s=gpu_time, devices=tuple(entries), gpu_memory=self._gpu_memory(),
            cpu_peak_rss_bytes=rss, cpu_rss_method=self._rss_method, cpu_rss_start_bytes=rss_start,
            co2_kg=co2, co2_method=co2_method,
            grid_g_per_kwh=grid, versions=run_versions(), device_names=self.device_names,
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
        for i in self.cuda_indices:
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


def gpus_of(device: str | None, visible: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The GPUs (label, name, uuid) a run on `device` uses: cuda:N that one, "cuda" the current
    one, cpu or mps none; None all of them."""
    if device is None:
        return list(visible)
    kind, _, index = str(device).partition(":")
    if kind != "cuda":
        return []
    if not index:
        index = str(torch.cuda.current_device()) if torch.cuda.is_available() else "0"
    return [d for d in visible if d[0] == f"cuda:{index}"]


def _import_pynvml():
    try:
        import pynvml
        return pynvml
    except ImportError:
        return None
