"""The meters at their boundaries: fake NVML, fake RAPL tree, fake clock, real offline CodeCarbon."""
import os
import socket
import time
from types import SimpleNamespace

import pytest

from fwdlib import energy
from fwdlib.meters import backends
from fwdlib.meters.energy import EnergyMeter

GPU = [("cuda:0", "Fake H100", "GPU-aaaa-1111")]


class FakeNVML:
    """Just the NVML calls fwdlib makes. Counter readings (mJ) come from a list, one per call."""

    class NVMLError(Exception):
        pass

    def __init__(self, counter=None, watts=250.0, uuids=("GPU-aaaa-1111",), init_error=None,
                 instant_field=True):
        self.counter, self.watts, self.uuids = list(counter or []), watts, uuids
        self.init_error, self.instant_field = init_error, instant_field

    def nvmlInit(self):
        if self.init_error:
            raise self.NVMLError(self.init_error)

    def nvmlDeviceGetCount(self):
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"handle{i}"

    def nvmlDeviceGetUUID(self, handle):
        return self.uuids[int(handle[-1])]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.counter:
            raise self.NVMLError("Not Supported")
        return self.counter.pop(0) if len(self.counter) > 1 else self.counter[0]

    def nvmlDeviceGetFieldValues(self, handle, fields):
        if not self.instant_field:
            raise self.NVMLError("Not Supported")
        return [SimpleNamespace(nvmlReturn=0, value=SimpleNamespace(uiVal=int(self.watts * 1000)))]

    def nvmlDeviceGetPowerUsage(self, handle):
        return int(self.watts * 1000)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=123 * 2**20)


def meter(**kw):
    kw.setdefault("co2", False)
    kw.setdefault("rapl_root", "/nonexistent")
    return EnergyMeter(**kw)


def gpu_entry(result):
    return next(d for d in result.devices if d.kind == "gpu")


# ------------------------------------------------------------------ NVML

def test_counter_delta_becomes_joules():
    # probe read, start read, stop read (mJ)
    m = meter(nvml=FakeNVML(counter=[0, 1_000, 6_500, 6_500]), cuda_device_list=GPU)
    with m:
        pass
    entry = gpu_entry(m.result)
    assert (entry.source, entry.backend, entry.joules) == ("measured_counter", "nvml_counter", 5.5)
    assert m.result.measured_joules() == 5.5


TWO_GPUS = [("cuda:0", "Fake H100", "GPU-aaaa-1111"), ("cuda:1", "Fake H100", "GPU-bbbb-2222")]


def test_a_cpu_run_on_a_gpu_machine_counts_no_gpu_energy():
    m = meter(nvml=FakeNVML(counter=[0, 1_000, 6_500, 6_500]), cuda_device_list=GPU, device="cpu")
    with m:
        pass
    gpus = [d for d in m.result.devices if d.kind == "gpu"]
    assert [(d.device, d.joules, d.source) for d in gpus] == [("cuda:0 (Fake H100)", None, "unavailable")]
    assert gpus[0].reason == "not metered: the run uses the cpu device"
    assert m.result.measured_joules() == 0 and not m.cuda


def test_a_run_on_the_second_gpu_meters_that_gpu_only():
    nvml = FakeNVML(counter=[0, 1_000, 6_500, 6_500], uuids=("GPU-aaaa-1111", "GPU-bbbb-2222"))
    m = meter(nvml=nvml, cuda_device_list=TWO_GPUS, device="cuda:1")
    with m:
        pass
    gpus = {d.device: d for d in m.result.devices if d.kind == "gpu"}
    assert (gpus["cuda:1 (Fake H100)"].source, gpus["cuda:1 (Fake H100)"].joules) == ("measured_counter", 5.5)
    assert gpus["cuda:0 (Fake H100)"].source == "unavailable"
    assert gpus["cuda:0 (Fake H100)"].reason == "not metered: the run uses the cuda:1 device"
    assert m.result.measured_joules() == 5.5
    assert [d[0] for d in energy.gpus_of(None, TWO_GPUS)] == ["cuda:0", "cuda:1"]
    assert energy.gpus_of("mps", TWO_GPUS) == [] and energy.gpus_of("cuda:0", TWO_GPUS) == TWO_GPUS[:1]


def test_counter_reset_is_invalid_not_negative():
    m = meter(nvml=FakeNVML(counter=[0, 9_000, 2_000, 2_000]), cuda_device_list=GPU)
    with m:
        pass
    entry = gpu_entry(m.result)
    assert entry.joules is None and entry.source == "unavailable" and "reset" in entry.reason
    assert m.result.measured_joules() == 0


def test_no_counter_falls_back_to_sampled_instant_power():
    m = meter(nvml=FakeNVML(counter=None, watts=200.0), cuda_device_list=GPU, sample_interval=0.01)
    with m:
        import time
        time.sleep(0.3)
    entry = gpu_entry(m.result)
    assert (entry.source, entry.backend) == ("sampled_power", "nvml_sampler")
    # exact, whatever the machine's load: 200 W over the span the samples cover, inside the window
    sampler = next(b for b in m.backends if isinstance(b, backends.PowerSampler))
    times = [t for t, _ in next(iter(sampler.samples.values()))]
    assert entry.joules == pytest.approx(200.0 * (times[-1] - times[0]), rel=1e-9)
    assert 0 < times[-1] - times[0] <= m.result.wall_s       # every sample inside the timed window


def test_library_not_found_is_unavailable_with_reason():
    m = meter(nvml=FakeNVML(init_error="NVML Shared Library Not Found"), cuda_device_list=GPU)
    with m:
        pass
    entry = gpu_entry(m.result)
    assert entry.source == "unavailable" and "Library Not Found" in entry.reason
    assert m.result.measured_joules() == 0


def test_gpus_matched_by_uuid_not_index():
    nvml = FakeNVML(counter=[0], uuids=("GPU-other-0000", "GPU-aaaa-1111"))
    found, missing, handles = backends.probe_gpus(nvml, GPU, 0.1)
    assert missing == [] and handles == {"cuda:0 (Fake H100)": "handle1"}
    _, missing, _ = backends.probe_gpus(FakeNVML(uuids=("GPU-zzzz",)), GPU, 0.1)
    assert "no NVML device with UUID" in missing[0].reason


def test_sampler_integrates_exact_trapezoids_on_a_fake_clock():
    times = iter([0.0, 0.1, 0.3, 0.6, 1.0])
    watts = iter([100.0, 110.0, 130.0, 90.0, 50.0])
    sampler = backends.PowerSampler({"gpu": lambda: next(watts)}, clock=lambda: next(times))
    sampler.start(thread=False)
    sampler.sample()
    sampler.sample()
    sampler.sample()
    joules, reason = sampler.snapshot()["gpu"]
    expected = 0.1 * 105 + 0.2 * 120 + 0.3 * 110 + 0.4 * 70
    assert reason is None and joules == pytest.approx(expected, abs=1e-12)
    assert backends.integrate([(0, 10), (2, 10)], 0, 2) == 20


# ------------------------------------------------------------------ RAPL

def rapl_tree(root, packages=((100, 1000), (200, 1000))):
    for i, (uj, max_uj) in enumerate(packages):
        domain = root / f"intel-rapl:{i}"
        domain.mkdir(parents=True)
        (domain / "name").write_text(f"package-{i}\n")
        (domain / "energy_uj").write_text(str(uj))
        (domain / "max_energy_range_uj").write_text(str(max_uj))
        sub = root / f"intel-rapl:{i}:0"                 # core sub-domain: part of the package
        sub.mkdir()
        (sub / "name").write_text("core\n")
        (sub / "energy_uj").write_text("999999")
    psys = root / "intel-rapl:9"
    psys.mkdir()
    (psys / "name").write_text("psys\n")
    (psys / "energy_uj").write_text("5")


def test_rapl_reads_packages_once_and_handles_wraparound(tmp_path):
    rapl_tree(tmp_path)
    rapl = backends.Rapl(tmp_path)
    assert rapl.devices == ["cpu package-0", "cpu package-1"]
    rapl.start()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("400")          # +300 uJ
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("50")           # wrapped: +850 uJ
    snap = rapl.snapshot()
    assert snap["cpu package-0"] == (300e-6, None)
    assert snap["cpu package-1"] == (pytest.approx(850e-6), None)


def test_rapl_permission_denied_is_unavailable(tmp_path):
    rapl_tree(tmp_path)

    def opener(path, *args):
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args)

    m = meter(rapl_root=tmp_path, rapl_opener=opener, cuda_device_list=[])
    with m:
        pass
    cpu = next(d for d in m.result.devices if d.backend == "rapl")
    assert cpu.source == "unavailable" and "Permission denied" in cpu.reason


def test_rapl_counts_in_the_meter(tmp_path):
    rapl_tree(tmp_path, packages=((0, 10**9),))
    m = meter(rapl_root=tmp_path, cuda_device_list=[])
    m.start()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text(str(3_000_000))
    result = m.stop()
    assert result.measured_joules() == pytest.approx(3.0)


# ------------------------------------------------------------------ the record

def test_laps_partial_and_short_window_warnings():
    m = meter(nvml=FakeNVML(counter=[0, 0, 1_000, 3_000]), cuda_device_list=GPU)
    with pytest.raises(RuntimeError):
        with m:
            m.lap("epoch1")
            raise RuntimeError("training blew up")
    result = m.result
    assert result.partial and "PARTIAL" in str(result)
    assert result.laps[0].joules == {"cuda:0 (Fake H100)": 1.0} and result.laps[0].warning
    assert any("shorter than" in w for w in result.warnings)


def test_estimates_never_join_measurements_silently():
    entries = (energy.DeviceEnergy("gpu", "gpu", 10.0, "measured_counter", "nvml_counter"),
               energy.DeviceEnergy("cpu", "cpu", 5.0, "estimated", "codecarbon"),
               energy.DeviceEnergy("x", "gpu", None, "unavailable", "nvml", "why"))
    result = energy.EnergyResult(1.0, None, entries, (), None, "m", None, None, "off", None, {}, ())
    assert result.measured_joules() == 10.0
    assert result.total_joules(include_estimates=False) == (10.0, "measured only")
    total, label = result.total_joules(include_estimates=True)
    assert total == 15.0 and "ESTIMATED" in label
    assert "<table>" in result._repr_html_() and "estimated (codecarbon)" in str(result)


def test_failing_backend_never_breaks_the_work():
    class Broken:
        backend, source, kind, devices = "broken", "measured_counter", "gpu", ["gpu x"]

        def start(self):
            raise OSError("device vanished")

    for idle_s in (0.0, 0.05):           # with an idle baseline too: its start is guarded alike
        m = meter(cuda_device_list=[], idle_s=idle_s)
        m.backends.append(Broken())
        with m:
            pass
        assert m.result is not None and m.result.wall_s >= 0      # the window was still measured
        entry = next(d for d in m.result.devices if d.backend == "broken")
        assert entry.source == "unavailable" and "device vanished" in entry.reason


# ------------------------------------------------------------------ CodeCarbon, for real, offline

@pytest.fixture
def clean_codecarbon_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("CODECARBON_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))              # no ~/.codecarbon.config
    monkeypatch.chdir(tmp_path)                            # no ./.codecarbon.config
    attempts = []

    def guard(self, address, *args):
        attempts.append(address)
        raise OSError(f"network blocked by the test: {address}")

    monkeypatch.setattr(socket.socket, "connect", guard)
    return tmp_path, attempts


def test_offline_codecarbon_on_this_cpu_machine(clean_codecarbon_env):
    tmp, attempts = clean_codecarbon_env
    m = EnergyMeter(rapl_root="/nonexistent", cuda_device_list=[])
    with m:
        sum(i * i for i in range(200_000))
    result = m.result
    assert attempts == [], f"CodeCarbon tried the network: {attempts}"
    assert result.co2_kg is not None and result.co2_kg > 0
    assert "Offline" in result.co2_method and "POL" in result.co2_method
    assert result.grid_g_per_kwh is not None and 100 < result.grid_g_per_kwh < 2000
    gpu = gpu_entry(result)
    assert gpu.source == "unavailable" and "no CUDA device" in gpu.reason
    assert result.measured_joules() == 0
    estimates = [d for d in result.devices if d.backend == "codecarbon"]
    assert estimates and all(d.source == "estimated" for d in estimates)
    assert list(tmp.iterdir()) == []                        # no output files unless asked


def test_codecarbon_none_is_a_failure_not_zero(clean_codecarbon_env, monkeypatch):
    m = EnergyMeter(rapl_root="/nonexistent", cuda_device_list=[])
    m.start()
    monkeypatch.setattr(m._tracker.tracker, "stop", lambda: None)
    result = m.stop()
    assert result.co2_kg is None and "FAILED" in result.co2_method
    assert any("CO2 not available" in w for w in result.warnings)


def test_idle_baseline_gives_idle_watts_and_subtracted_joules():
    # probe, idle start, idle end (+0.5 J over ~0.2 s), window start, window end (+10 J)
    nvml = FakeNVML(counter=[0, 0, 500, 1_000, 11_000])
    m = meter(nvml=nvml, cuda_device_list=GPU, idle_s=0.2)
    with m:
        pass
    entry = gpu_entry(m.result)
    assert entry.joules == 10.0
    assert 0 < entry.idle_watts <= 0.5 / 0.2                  # 0.5 J over at least the 0.2 s asked for
    assert entry.idle_subtracted_joules == pytest.approx(10.0 - entry.idle_watts * m.result.wall_s)
    assert m.result.idle_subtracted_joules() == entry.idle_subtracted_joules


def test_cross_check_sampler_is_kept_apart_from_the_total():
    m = meter(nvml=FakeNVML(counter=[0, 0, 4_000], watts=100.0), cuda_device_list=GPU,
              cross_check=True, sample_interval=0.01)
    with m:
        import time
        time.sleep(0.1)
    result = m.result
    assert result.measured_joules() == 4.0                      # the counter only
    sampled = result.cross_checks["sampled_power_j"]["cuda:0 (Fake H100)"]
    times = [t for t, _ in next(iter(m._cross_sampler.samples.values()))]
    assert sampled == pytest.approx(100.0 * (times[-1] - times[0]), rel=1e-9)   # exact under any load
    assert times[-1] - times[0] == pytest.approx(result.wall_s, abs=0.05)


def test_co2_covers_the_same_window_as_the_energy(monkeypatch):
    """CodeCarbon starts after the idle baseline, when the measured window starts."""
    events = []

    class Tracker:
        def __init__(self, country, output_dir):
            pass

        def start(self):
            events.append(("tracker start", time.perf_counter()))

        def stop(self):
            return backends.Emissions(None, "fake", reason="fake")

    monkeypatch.setattr(energy, "CodeCarbon", Tracker)
    m = meter(cuda_device_list=[], idle_s=0.2, co2=True)
    before = time.perf_counter()
    with m:
        events.append(("work", time.perf_counter()))
    (_, started), (_, worked) = events
    assert started - before >= 0.2 and started <= worked
