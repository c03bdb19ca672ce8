"""Command line for data: ``fake-imagenet`` (a synthetic ImageNet in the official layout),
``check-data`` (the pre-check a search or retraining makes before any compute, on its own) and
``verify-archive`` (every run of the committed run archive checked against its recorded file hashes).

Registered by ``cli.parser()``; errors follow ``cli``'s convention (``ValueError`` → exit 2,
one line on stderr).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfnas_core.utils.checks import non_negative_int, positive_int
from tfnas_core.cli.common import print_result
from tfnas_core.runs.files import ARCHIVE_ROOT


def cmd_fake_imagenet(a: argparse.Namespace) -> None:
    from tfnas_core.experiments import fake_imagenet

    r = fake_imagenet.make(a.dir, train_list=a.train_list, val_list=a.val_list, val_per_class=a.val_per_class,
                           size=a.size, distinct=a.distinct, odd=a.odd, seed=a.seed)
    odd = ", ".join(f"{len(v)} {k}" for k, v in r.odd.items())
    print_result(fake_imagenet.summary(r), a.json,
                 f"{r.root}: {len(r.classes)} classes, {r.n_train} train files ({r.encoded} images encoded, "
                 f"{r.linked} hard links, {r.copied} copies), {r.n_val} val files; odd files: {odd}; {r.seconds:.1f} s")


def cmd_check_data(a: argparse.Namespace) -> None:
    from tfnas_core.data import datasets as data
    from tfnas_core.search import data as search_data
    from tfnas_core.search.config import SearchConfig

    root = Path(a.root)
    if a.lists:
        cfg = SearchConfig(data_root=str(root), **({"train_list": a.train_list} if a.train_list else {}),
                           **({"val_list": a.val_list} if a.val_list else {}))
        rels = [rel for rel, _ in search_data.read_list(cfg.train_list) + search_data.read_list(cfg.val_list)]
        check = data.check_files(search_data.train_root(cfg), rels, header=not a.no_header)
        what = "ImageNet-100 lists"
    else:
        tr, va = data.check_image_folder(root, header=False)
        rels = [f"train/{f}" for f in tr.files] + [f"val/{f}" for f in va.files]
        check = data.check_files(root, rels, header=not a.no_header)
        what = f"ImageNet ({len(tr.classes)} classes)"
    result = {"root": str(check.root), "files": check.n, "missing": len(check.missing),
              "unreadable": len(check.unreadable), "first_bad": sorted(check.bad)[:10], "seconds": check.seconds}
    if not check.ok:
        raise data.DataError(check.line(what))
    print_result(result, a.json, f"{check.line(what)} under {check.root} ({check.seconds:.1f} s)")


def cmd_verify_archive(a: argparse.Namespace) -> None:
    from tfnas_core.runs import archive as run_archive

    if a.record_hashes:
        recorded, had = run_archive.record_hashes(a.archive)
        print(f"{a.archive}: file hashes recorded in {len(recorded)} store.json file(s) from the files as they are, "
              f"{len(had)} had them", file=sys.stderr if a.json else sys.stdout)
    check = run_archive.verify_archive(a.archive)
    for line in check.bad:
        print(line, file=sys.stderr)
    if a.json:
        print_result({"archive": check.root, "runs": check.runs, "bad": check.bad, "seconds": check.seconds}, True, "")
    if not check.ok:
        raise run_archive.ArchiveError(check.message())
    if not a.json:
        print(check.message())


def add_data_parser(sub) -> None:
    from tfnas_core.experiments.fake_imagenet import OFFICIAL_TRAIN_LIST, OFFICIAL_VAL_LIST

    sp = sub.add_parser("fake-imagenet", help="write a synthetic ImageNet in the official layout (seconds)",
                        description="Write DIR/train/<wnid>/<file>.JPEG for every file the official ImageNet-100 "
                                    "lists name and DIR/val/<wnid>/*.JPEG (ImageFolder): a few encoded images per "
                                    "class, hard links for the rest, with grayscale, CMYK and PNG-named-JPEG files "
                                    "among them. Built beside DIR and renamed into place; a non-empty DIR is refused.")
    sp.add_argument("dir", help="the folder to create (must not exist, or be empty)")
    sp.add_argument("--val-per-class", type=positive_int, default=10, help="validation images per class (default 10)")
    sp.add_argument("--size", type=positive_int, default=32, help="image height in pixels (default 32; at least 8)")
    sp.add_argument("--distinct", type=positive_int, default=4,
                    help="images encoded per class; the other listed files link to them (default 4)")
    sp.add_argument("--odd", type=non_negative_int, default=2,
                    help="grayscale, CMYK and PNG-named-JPEG files of each kind, in train and in val (default 2)")
    sp.add_argument("--seed", type=non_negative_int, default=0, help="pixel noise seed (default 0)")
    sp.add_argument("--train-list", default=OFFICIAL_TRAIN_LIST, help="official train list (default: ../shared/reference)")
    sp.add_argument("--val-list", default=OFFICIAL_VAL_LIST, help="official val list (default: ../shared/reference)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.set_defaults(func=cmd_fake_imagenet)

    sp = sub.add_parser("check-data", help="check an ImageNet root before a search or retraining: missing and unreadable files",
                        description="Count the missing and unreadable image files of an ImageNet root: with --lists "
                                    "those the ImageNet-100 lists name (as a search reads them), else every image of "
                                    "train/ and val/ (as a retraining reads them). Exit 2 with one line when any is bad.")
    sp.add_argument("root", help="ImageNet root with train/ and val/ (with --lists: or the train/ folder itself)")
    sp.add_argument("--lists", action="store_true", help="check the files the ImageNet-100 lists name")
    sp.add_argument("--train-list", help="with --lists: the weights list (default: the official one)")
    sp.add_argument("--val-list", help="with --lists: the arch list (default: the official one)")
    sp.add_argument("--no-header", action="store_true", help="existence only, do not open the files")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.set_defaults(func=cmd_check_data)

    sp = sub.add_parser("verify-archive", help="verify every run of the run archive: file hashes, keys, no symlinks",
                        description="Check every archived run: no symlink, its config hashes to its folder name, "
                                    "every file has the SHA-256 its store.json recorded, none missing, unlisted or "
                                    "torn. One line per bad run (naming it and the file) on stderr, then a summary; "
                                    "exit 2 when any is bad.")
    sp.add_argument("--archive", default=ARCHIVE_ROOT, help=f"the archive (default: {ARCHIVE_ROOT})")
    sp.add_argument("--record-hashes", action="store_true",
                    help="first record the file hashes of the runs whose store.json has none (archived before "
                         "they were recorded), from the files as they are; check them (git diff) first")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.set_defaults(func=cmd_verify_archive)


__all__ = ["add_data_parser", "cmd_check_data", "cmd_fake_imagenet", "cmd_verify_archive"]
