"""What a meter reports: energy per device with its provenance, GPU memory, laps, and the result
that adds measured joules only (estimates must be asked for, and are labelled)."""
from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field


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

    def measured_text(self) -> str:
        """The measured total as a reader should see it: 0 J would claim a measurement that nothing made."""
        if not any(d.source in MEASURED and d.joules is not None for d in self.devices):
            return "nothing measured (no energy counter or power sensor was readable)"
        return f"{self.measured_joules():.1f} J"

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
        extra = [f"measured total: {self.measured_text()}"
                 + (" (PARTIAL: the block raised)" if self.partial else "")]
        extra += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines + extra)

    def _repr_html_(self) -> str:
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                        for r in self.rows())
        notes = "".join(f"<p>warning: {html.escape(w)}</p>" for w in self.warnings)
        return ("<table><tr><th>quantity</th><th>value</th><th>how it was obtained</th><th>note</th></tr>"
                f"{cells}</table><p>measured total: {html.escape(self.measured_text())}"
                f"{' (PARTIAL)' if self.partial else ''}</p>{notes}")
