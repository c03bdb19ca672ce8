"""Progress of notebook runs on the real terminal: what runs, which epoch, the ETA."""
import io

from tfnas_core.experiments import notebook as E
from tfnas_core.utils.progress import RunProgress, format_eta
from tfnas_core.runs.loop import Event


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def ev(kind, epoch, epochs=8, step=0, steps=0, phase="", **values):
    return Event(kind, epoch, epochs, step, steps, phase, values)


def test_epoch_lines_carry_time_per_epoch_and_eta():
    out, clock, seen = io.StringIO(), Clock(), []
    p = RunProgress("search [second_path=gumbel] seed 2", "table3-sampling", forward=seen.append, stream=out,
                    clock=clock)
    p.start("running in runs/abc")
    clock.t += 40
    p.event(ev("epoch", 1, phase="warmup"))
    clock.t += 20
    p.event(ev("epoch", 2, phase="warmup"))
    p("epoch 3/8 [search] ... a text message is forwarded, never parsed")
    clock.t += 60
    p.event(ev("epoch", 3, phase="search"))
    clock.t += 80
    p.event(ev("epoch", 8, phase="search"))
    lines = out.getvalue().splitlines()
    assert lines == [
        "[table3-sampling] search [second_path=gumbel] seed 2: running in runs/abc",
        "[table3-sampling] search [second_path=gumbel] seed 2: epoch 1/8 (40 s/epoch, ETA 4.7 min)",
        "[table3-sampling] search [second_path=gumbel] seed 2: epoch 2/8 (30 s/epoch, ETA 3.0 min)",
        "[table3-sampling] search [second_path=gumbel] seed 2: epoch 3/8 (60 s/epoch, ETA 5.0 min)",
        "[table3-sampling] search [second_path=gumbel] seed 2: epoch 8/8 (70 s/epoch, done)",
    ]
    assert seen == ["epoch 3/8 [search] ... a text message is forwarded, never parsed"]


def test_a_resumed_run_times_only_its_own_epochs():
    out, clock = io.StringIO(), Clock()
    p = RunProgress("retrain [x] seed 2", stream=out, clock=clock)
    clock.t += 500  # set-up before the run resumes is not an epoch's time
    p.event(ev("resumed", 6))
    clock.t += 10
    p.event(ev("epoch", 7, phase="train"))
    assert out.getvalue().splitlines() == ["retrain [x] seed 2: resumed after epoch 6/8",
                                           "retrain [x] seed 2: epoch 7/8 (10 s/epoch, ETA 10 s)"]


def test_format_eta():
    assert [format_eta(s) for s in (5, 89, 90, 3000, 7200)] == ["5 s", "89 s", "1.5 min", "50.0 min", "2.0 h"]


def test_a_search_reports_every_epoch_on_the_real_stderr(tmp_path, capfd):
    ctx = E.Context("smoke", runs_root=str(tmp_path / "runs"), name="nb", log=lambda m: None)
    run = E.search_run(ctx, 2, second_path="gumbel")
    err = capfd.readouterr().err.splitlines()
    epochs = run.config.epochs
    mine = [line for line in err if line.startswith("[nb] search [second_path=gumbel] seed 2: ") and " step " not in line]
    assert mine[0].endswith(f"running in {run.path}")
    assert [line.split(": ", 1)[1].split(" (")[0] for line in mine[1:]] == [f"epoch {e}/{epochs}" for e in
                                                                          range(1, epochs + 1)]
    assert "ETA" in mine[1] and mine[-1].endswith("done)")
    E.search_run(ctx, 2, second_path="gumbel")  # reused: no new run, no progress lines
    assert "[nb]" not in capfd.readouterr().err
