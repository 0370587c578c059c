"""torch's CPU threads follow the cores a container or service quota allows, not the host's."""

import os

import torch

from motionclone.device.cpu_threads import usable_cores, use_usable_cores


def test_a_cgroup_cpu_quota_caps_the_cores(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    visible = len(os.sched_getaffinity(0))
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == visible
    cpu_max.write_text("50000 100000\n")  # half a CPU still needs one thread
    assert usable_cores(cpu_max) == 1
    cpu_max.write_text(f"{(visible + 3) * 100000} 100000\n")  # a quota above the mask changes nothing
    assert usable_cores(cpu_max) == visible
    assert usable_cores(tmp_path / "absent") == visible


def test_the_thread_pool_shrinks_to_the_usable_cores_and_never_grows(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr("motionclone.device.cpu_threads.usable_cores", lambda: 1)
        assert use_usable_cores() == 1 == torch.get_num_threads()
        monkeypatch.setattr("motionclone.device.cpu_threads.usable_cores", lambda: 64)
        assert use_usable_cores() == 1, "a pool a caller made smaller stays so"
    finally:
        torch.set_num_threads(before)
