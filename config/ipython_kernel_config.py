# Kernels of this project's .venv (papermill under `make reproduce-*`, JupyterLab): two log lines
# that every run printed and that look like failures are dropped; everything else is kept.
# `make setup` installs this file as .venv/etc/ipython/ipython_kernel_config.py.
import logging

QUIET = (
    # the kernel listens on 127.0.0.1 only; papermill's kernel manager cannot provision CurveZMQ keys
    "Kernel is running over TCP without encryption",
    # jupyter_client interrupts every kernel before shutting it down; a kernel still finishing a
    # message at that moment logs this although no cell was interrupted
    "KeyboardInterrupt caught in kernel",
)


class QuietKernelLog(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(QUIET)


c = get_config()  # noqa: F821 (defined by the IPython config loader)
c.IPKernelApp.logging_config = {"filters": {"quiet": {"()": QuietKernelLog}},
                                "handlers": {"console": {"filters": ["quiet"]}}}
