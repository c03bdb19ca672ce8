"""config/ipython_kernel_config.py (installed into .venv by `make setup`): the kernel's two
failure-looking log lines are dropped, its other log lines kept."""
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_kernel_log_keeps_errors_but_not_the_noise(tmp_path):
    manager = pytest.importorskip("jupyter_client.manager")
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    shutil.copy(ROOT / "config" / "ipython_kernel_config.py", profile)
    km = manager.KernelManager(kernel_name="python3")
    # IPYTHONDIR's profile is one of the places the kernel reads its config from, as is
    # .venv/etc/ipython where `make setup` puts the file
    log = tmp_path / "kernel-stderr.txt"
    with open(log, "w") as f:
        km.start_kernel(env={**os.environ, "IPYTHONDIR": str(profile.parent)}, stderr=f)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(
            "k = get_ipython().kernel\n"
            "k.log.error('KeyboardInterrupt caught in kernel')\n"
            "k.log.error('a real kernel error stays visible')", timeout=60)
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    err = log.read_text()
    assert "a real kernel error stays visible" in err
    assert "without encryption" not in err and "KeyboardInterrupt" not in err
