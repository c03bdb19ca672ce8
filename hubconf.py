"""torch.hub entry points: one per published TF-NAS network of ``tfnas_core.arch.zoo``.

    net = torch.hub.load(REPO_DIR, "tfnas_a", source="local", weights="TF-NAS-A.pth.tar").eval()

Entry names come from the zoo (``official.hub_name``: ``TF-NAS-CPU-A`` -> ``tfnas_cpu_a``);
``torch.hub.list(REPO_DIR, source="local")`` lists them.  ``weights`` is a local path, never a
download: our layout (``weights.pt`` written by ``python -m tfnas_core import-official``) or
the original code's released ``.pth.tar``.  Without ``weights`` the network is randomly
initialised.  The network is returned in training mode, as any ``nn.Module``: call ``.eval()``.
"""
from tfnas_core.arch import zoo as _zoo
from tfnas_core.released.official import hub_name as _hub_name

dependencies = ["torch"]


def _build(name: str, weights=None, num_classes: int = 1000, dropout: float = 0.0, drop_connect: float = 0.0):
    from tfnas_core.nn import model
    from tfnas_core.released import official
    from tfnas_core.arch.space import PAPER_SCALE

    spec = _zoo.load(name)
    net = model.build(spec, PAPER_SCALE.with_(num_classes=num_classes), dropout=dropout, drop_connect=drop_connect)
    if weights is not None:
        net.load_state_dict(official.load_weights(weights, spec, num_classes))
    return net


def _entry(name: str):
    p = _zoo.PAPER[name]

    def entry(weights=None, num_classes: int = 1000, dropout: float = 0.0, drop_connect: float = 0.0):
        return _build(name, weights, num_classes, dropout, drop_connect)

    entry.__name__ = entry.__qualname__ = _hub_name(name)
    entry.__doc__ = (
        f"{name} (paper appendix Table {p.table}: {p.top1} % ImageNet top-1, {p.flops_m} M FLOPs).\n\n"
        f"weights: a local file, ours (import-official's weights.pt) or the original's .pth.tar; no download.\n"
        f"Without weights the network is randomly initialised.  num_classes: the classifier's size\n"
        f"(1000: ImageNet); dropout / drop_connect: for retraining (the paper's dropout here: {p.dropout}).\n"
        f"Returned in training mode: call .eval() for inference."
    )
    return entry


for _name in _zoo.names():
    globals()[_hub_name(_name)] = _entry(_name)
del _name
