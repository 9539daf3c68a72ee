"""The training curve: the four held-out figures against total steps, over checkpoints.

``docs/training_curve.json`` keeps one row per evaluated checkpoint and protocol (the report of
``python -m msgnet evaluate`` reduced to its figures); ``plot`` draws it:

    .venv/bin/python -m workbench.training_curve add runs/eval/r.json --total-steps 5000 \\
        --protocol quick
    .venv/bin/python -m workbench.training_curve plot          # docs/img/training_curve.png

Protocols: ``quick`` (2 held-out photos x 6 presets at 256 px, the one the training issue used
from the start; cheap enough to run beside training) and ``bar`` (8 photos x all 21 presets at
512 px, the one the done-when bar is stated on).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "docs" / "training_curve.json"
DEFAULT_PLOT = ROOT / "docs" / "img" / "training_curve.png"
FIGURES = (  # key, title, the bar (None: no bar), higher is better
    ("identification", "identification (nearest style is its own)", 0.90, True),
    ("style_ratio", "style loss ÷ unstylized photo's", 0.20, False),
    ("content_ratio", "content loss ÷ style image's", 0.40, False),
    ("separation", "separation (Gram distance of outputs ÷ of styles)", None, True),
)


def row_from_report(report: dict, total_steps: int, protocol: str) -> dict:
    figures = report["summary"]["styles"]
    meta = report.get("weights_metadata", {})
    return {"total_steps": total_steps, "protocol": protocol, "size": report["size"],
            "styles": figures["styles"], "photos": figures["photos"],
            "chance": round(figures["chance"], 4),
            **{k: round(figures[k], 4) for k, *_ in FIGURES},
            "weights_date": meta.get("date"), "source": "msgnet evaluate"}


def load_rows(path: Path) -> list[dict]:
    return json.loads(path.read_text())["rows"] if path.exists() else []


def save_rows(path: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: (r["protocol"], r.get("source", ""), r["total_steps"]))
    path.write_text(json.dumps({"about": __doc__.split("\n\n")[0], "rows": rows},
                               indent=1, ensure_ascii=False) + "\n")


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    series: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        series.setdefault((r["protocol"], r.get("source", "")), []).append(r)
    for ax, (key, title, bar, _) in zip(axes.flat, FIGURES, strict=True):
        for (protocol, source), items in sorted(series.items()):
            items = sorted(items, key=lambda r: r["total_steps"])
            first = items[0]
            label = (f"{protocol}: {first['photos']} photos × {first['styles']} styles, "
                     f"{first['size']} px")
            dotted = source != "msgnet evaluate"
            if dotted:
                label += f" ({source})"
            ax.plot([r["total_steps"] for r in items], [r[key] for r in items],
                    ":" if dotted else "-", marker="o", markersize=3, label=label)
            if key == "identification" and not dotted:
                ax.axhline(first["chance"], color="grey", linewidth=0.6, linestyle="--")
        if bar is not None:
            ax.axhline(bar, color="green", linewidth=0.8, linestyle="--")
            ax.annotate("bar", (0, bar), xycoords=("axes fraction", "data"), color="green",
                        fontsize=8, xytext=(2, 2), textcoords="offset points")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("total training steps (batch 4)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=1, fontsize=8, frameon=False)
    fig.suptitle("MSG-Net on held-out BSDS500 val_ photos (grey dashes: chance; green: the bar)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.02 + 0.035 * len(labels), 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("add", help="add (or replace) the row of an evaluate report")
    a.add_argument("report", type=Path)
    a.add_argument("--total-steps", type=int, required=True)
    a.add_argument("--protocol", required=True, choices=("quick", "bar"))
    d = sub.add_parser("plot", help="draw the curve")
    d.add_argument("-o", "--output", type=Path, default=DEFAULT_PLOT)
    args = p.parse_args(argv)
    rows = load_rows(args.data)
    if args.command == "add":
        new = row_from_report(json.loads(args.report.read_text()), args.total_steps,
                              args.protocol)
        rows = [r for r in rows if (r["total_steps"], r["protocol"], r.get("source"))
                != (new["total_steps"], new["protocol"], new["source"])] + [new]
        save_rows(args.data, rows)
        print(json.dumps(new))
    else:
        plot(rows, args.output)
        print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
