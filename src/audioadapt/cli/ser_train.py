"""``audioadapt ser train``: train one cross-lingual SER system from a preset."""

from __future__ import annotations

import argparse

_DESCRIPTION = """\
Train a speech emotion recognition system on a labelled source corpus and adapt
it to an unlabelled target corpus (the four emotions angry, happy, sad, neutral).

PRESET is a shipped preset or a YAML file:
  ser_snsa_f, ser_snsa_wo_sl, ser_snsa_wo_hl, ser_nnpm   (NNPM paper, Table 1)
  ser_dann                                               (the adversarial baseline of Table 2)
  ser_demo                                               (small and quick, for a CPU and generated data)
--source and --target are CORPUS:PATH with CORPUS one of iemocap, emodb, shemo,
urdu, ekorpus, csv (e.g. emodb:/data/emodb, csv:/x/manifest.csv), or a folder
written by `audioadapt synth ser` (its source or target domain, by the option).
Any setting can be changed with key.path=value, e.g.
  stage2.epochs=20  pseudo_multilabel.threshold=0.8  protocol.protocol=transductive
Settings the chosen method would ignore are rejected. Target labels are never
used for training or model selection; score the run afterwards with
`audioadapt ser evaluate RUN_DIR`.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.cli.common import add_run_arguments, add_train_parser

    p = add_train_parser(sub, help="train a SER system from a preset (NNPM, its baselines, DANN, demo)",
                         description=_DESCRIPTION)
    p.add_argument("--source", metavar="CORPUS:PATH", help="labelled source corpus (default on --resume: the run's)")
    p.add_argument("--target", metavar="CORPUS:PATH", help="target corpus (default on --resume: the run's)")
    add_run_arguments(p, "stage")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from audioadapt.api.ser import train_ser
    from audioadapt.cli.common import never_rose_note, train_overrides

    overrides = train_overrides(args)
    result = train_ser(args.preset, overrides, source=args.source, target=args.target, run_dir=args.out,
                       resume=args.resume)
    best = result.best
    if best.get("value") is not None:
        print(f"stage 1 selected epoch {best['global_epoch']} (source validation UA {best['value']:.4f})"
              f"{never_rose_note(best)}")
    print(f"run directory: {result.run_dir}")
    print(f"evaluate with: audioadapt ser evaluate {result.run_dir}")
    return 0
