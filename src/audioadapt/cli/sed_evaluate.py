"""``audioadapt sed evaluate``: F1 (and PSDS) of a predictions TSV, of score files or of a trained run.

The handler first resolves *where* the inputs are (:class:`EvaluateInputs`),
then evaluates and reports. A run directory (``RUN_DIR``) is resolved by
:func:`audioadapt.api.sed.evaluate_sed_run`, which predicts with the run's
checkpoint and writes the report into the run directory; a folder of score
files (``--scores DIR --ref REF``) by
:func:`audioadapt.evaluation.score_evaluation.evaluate_score_files`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EvaluateInputs:
    """Files one evaluation reads and writes."""

    pred: Path | None
    ref: Path
    durations: Path | None = None
    out: Path | None = None
    classes: tuple[str, ...] | None = None
    extra_pred_files: str | None = None
    missing_pred: str | None = None
    scores: Path | None = None
    overrides: tuple[str, ...] = ()


def register(sub: argparse._SubParsersAction) -> None:
    from audioadapt.cli.common import IntermixedParser, add_progress_argument
    from audioadapt.cli.decode_args import OVERRIDES_HELP, add_tuned_threshold_arguments

    p = sub.add_parser(
        "evaluate",
        help="event/segment/clip F1 and PSDS of a trained run (RUN_DIR), of score files or of predicted events",
        description="Score predicted events (DCASE strong TSV: filename onset offset event_label) against a "
        "reference with the DCASE task 4 settings: event-based F1 (200 ms collar, 20 % offset, zero_score), "
        "segment-based F1 (1 s) and clip-level F1. Every reference file needs a row in the predictions "
        "(a file without detections: its name with empty onset, offset and label, as 'sed predict' writes). "
        "Prints the per-class table; --out also writes JSON "
        "and a Markdown table beside it. With RUN_DIR, the run's checkpoint predicts the split first "
        "(PSDS1/2 added) and the report, with the predicted events, goes into RUN_DIR. With --scores DIR and "
        "--ref, a folder of frame-score files (sed_scores_eval format, one TSV per clip) is scored: PSDS1/2 "
        "threshold-free, F1 at the decode threshold (default 0.5, no further median filter). decode.* "
        "overrides change the decoding of RUN_DIR or of score files.",
    )
    p.__class__ = IntermixedParser
    p.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR",
                   help="a training run to evaluate (instead of --pred/--ref); writes eval_<split>.json/.md there")
    p.add_argument("overrides", nargs="*", metavar="decode.key=value", help=OVERRIDES_HELP)
    p.add_argument("--split", default="validation", choices=("validation", "synthetic_valid"),
                   help="with RUN_DIR: the split to evaluate (default: validation)")
    p.add_argument("--data", type=Path, metavar="ROOT",
                   help="with RUN_DIR: dataset root (default: the run's), e.g. a second real-domain validation set "
                   "made by 'synth sed' with the run's dataset's --split-seed and another --seed; it must have the "
                   "run's classes")
    p.add_argument("--tag", metavar="NAME",
                   help="with RUN_DIR: name the report eval_<split>_NAME.* (default: none on the run's own dataset, "
                   "else the --data folder's name, so the run's own report is kept)")
    p.add_argument("--checkpoint", default="best", metavar="best|last|PATH",
                   help="with RUN_DIR: checkpoint to evaluate (default: best)")
    add_tuned_threshold_arguments(p)
    p.add_argument("--allow-tuned-split", action="store_true",
                   help="with RUN_DIR: report the split the class thresholds were tuned on (refused otherwise); "
                   "the report says so")
    p.add_argument("--scores", type=Path, metavar="DIR",
                   help="with RUN_DIR: also write each clip's frame scores there (sed_scores_eval TSV per clip); "
                   "with --ref: evaluate the score files in DIR")
    p.add_argument("--pred", type=Path, metavar="PRED.tsv", help="predicted events")
    p.add_argument("--ref", type=Path, metavar="REF.tsv", help="reference events")
    p.add_argument("--durations", type=Path, metavar="D.tsv",
                   help="clip durations (filename duration) for the segment metric and PSDS; default: last event "
                   "offset (with --scores: the end of each score file)")
    p.add_argument("--out", type=Path, metavar="RESULTS.json", help="write results JSON (and RESULTS.md)")
    p.add_argument("--classes", type=_parse_classes, metavar="A,B,...",
                   help="comma-separated class list; a label of either file outside it is an error "
                   "(default: the labels of the reference; a predicted label outside them is an error)")
    p.add_argument("--extra-pred-files", choices=("error", "false_positive"),
                   help="predicted files absent from the reference: an error (default) or evaluated as "
                   "clips without events, so that all their detections are false positives")
    p.add_argument("--missing-pred", choices=("error", "empty"),
                   help="reference files without a row in the predictions: an error (default) or scored as "
                   "files without detections. A file listed with empty onset, offset and label has no "
                   "detections and is not missing")
    add_progress_argument(p)
    p.set_defaults(func=_run)


def _parse_classes(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(","))
    if not names or any(not n for n in names):
        raise argparse.ArgumentTypeError(f"empty class name in {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"duplicate class name in {text!r}")
    return names


def _inputs_from_files(args: argparse.Namespace) -> EvaluateInputs:
    return EvaluateInputs(args.pred, args.ref, args.durations, args.out, args.classes, args.extra_pred_files,
                          args.missing_pred, args.scores, tuple(args.overrides))


def _run(args: argparse.Namespace) -> int:
    from audioadapt.cli.decode_args import is_override
    from audioadapt.errors import ConfigError

    if args.run_dir is not None and is_override(str(args.run_dir)):  # an override, not a run
        args.overrides = [str(args.run_dir), *args.overrides]
        args.run_dir = None
    file_options = {"--pred": args.pred, "--ref": args.ref, "--durations": args.durations, "--out": args.out,
                    "--classes": args.classes, "--extra-pred-files": args.extra_pred_files,
                    "--missing-pred": args.missing_pred}
    run_options = {"--split": args.split != "validation", "--data": args.data,
                   "--checkpoint": args.checkpoint != "best", "--tag": args.tag,
                   "--no-tuned-thresholds": args.no_tuned_thresholds, "--allow-tuned-split": args.allow_tuned_split}
    if args.run_dir is not None:
        given = [name for name, value in file_options.items() if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} cannot be combined with RUN_DIR")
        return evaluate_run(args)
    given = [name for name, value in run_options.items() if value not in (None, False)]
    if given:
        raise ConfigError(f"{', '.join(given)} only apply to RUN_DIR")
    if args.ref is None or (args.pred is None) == (args.scores is None):
        raise ConfigError("give RUN_DIR, or --ref REF.tsv with either --pred PRED.tsv or --scores DIR")
    if args.scores is not None:
        given = [name for name in ("--classes", "--extra-pred-files", "--missing-pred")
                 if file_options[name] is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply to --pred (with --scores the classes are the score "
                              "files' columns, and every reference file needs a score file)")
    elif args.overrides:
        raise ConfigError(f"decode overrides ({', '.join(args.overrides)}) apply to RUN_DIR or --scores, not to "
                          "--pred, whose events are decoded already")
    return evaluate_inputs(_inputs_from_files(args))


def evaluate_run(args: argparse.Namespace) -> int:
    """Predict with a run's checkpoint, print the Markdown table and write the report into the run."""
    from audioadapt.api.sed import eval_file_stem, evaluate_sed_run
    from audioadapt.cli.outputs import check_output_folder, check_run_output

    check_run_output(args.run_dir)
    if args.scores is not None:
        check_output_folder(args.scores, "--scores")
    evaluation = evaluate_sed_run(args.run_dir, split=args.split, data_root=args.data, checkpoint=args.checkpoint,
                                  tag=args.tag, overrides=args.overrides,
                                  use_tuned_thresholds=not args.no_tuned_thresholds,
                                  allow_tuned_split=args.allow_tuned_split, scores_dir=args.scores)
    print(evaluation.to_markdown(), end="")
    stem = eval_file_stem(args.split, evaluation.inputs.get("tag"))
    print(f"\nwrote {args.run_dir / f'{stem}.json'} and {args.run_dir / f'{stem}.md'}")
    if args.scores is not None:
        print(f"wrote {evaluation.inputs['clips']} score file(s) to {args.scores}")
    return 0


def evaluate_inputs(inputs: EvaluateInputs) -> int:
    """Evaluate, print the Markdown table and write the report files if asked."""
    from audioadapt.cli.outputs import check_output_file
    from audioadapt.evaluation.api import evaluate_sed_files
    from audioadapt.evaluation.report import report_paths, write_report
    from audioadapt.evaluation.sed_metrics import SedMetricConfig

    if inputs.out is not None:
        for path in report_paths(inputs.out):
            check_output_file(path, "--out")
    if inputs.scores is not None:
        from audioadapt.evaluation.score_evaluation import evaluate_score_files

        evaluation = evaluate_score_files(inputs.scores, inputs.ref, inputs.durations, inputs.overrides)
    else:
        cfg = SedMetricConfig()
        if inputs.extra_pred_files is not None:
            cfg = dataclasses.replace(cfg, extra_prediction_files=inputs.extra_pred_files)
        optional = {} if inputs.missing_pred is None else {"missing_predictions": inputs.missing_pred}
        evaluation = evaluate_sed_files(inputs.pred, inputs.ref, inputs.durations, cfg, inputs.classes, **optional)
    report = evaluation.report()
    print(report.to_markdown(), end="")
    if inputs.out is not None:
        json_path, md_path = write_report(report, inputs.out)
        print(f"\nwrote {json_path} and {md_path}")
    return 0
