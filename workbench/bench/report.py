"""The Markdown tables printed at the end of a run."""

from __future__ import annotations

from typing import Any

from msgnet.inference.tiling import TileConfig


def table(report: dict[str, Any]) -> str:
    lines: list[str] = []
    lat = report.get("latency")
    if lat:
        variants = list(lat["variants"])
        sizes = list(next(iter(lat["variants"].values()))["sizes"])
        lines += ["| size | " + " | ".join(f"{v} s (×eager)" for v in variants)
                  + " | best GFLOP/s |", "|---" * (len(variants) + 2) + "|"]
        for label in sizes:
            cells, best = [], 0.0
            for v in variants:
                m = lat["variants"][v]["sizes"].get(label)
                if m is None:
                    cells.append("—")
                    continue
                ratio = m.get("speedup_vs_eager")
                cells.append(f"{m['median_s']:.3f}" + (f" ({ratio:.2f}×)" if ratio else ""))
                best = max(best, m["gflops_per_s"])
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {best:.0f} |")
        lines.append("")
        starts = []
        for v in variants:
            e = lat["variants"][v]
            first_label = next(iter(e["sizes"]))
            starts.append(f"{v} {e['build_s']:.1f} s + first call at {first_label} "
                          f"{e['sizes'][first_label]['first_call_s']:.1f} s")
        lines += ["Start-up (build + first call): " + "; ".join(starts) + ".", ""]
        rounds = [f"{v} {label} {m['round_speedup_vs_eager']:.2f}×"
                  for v in variants if v != "eager"
                  for label, m in lat["variants"][v]["sizes"].items()
                  if m.get("round_speedup_vs_eager")]
        if rounds:
            lines += ["Median of the per-round ratios to eager (each round times every variant "
                      "once, each in its own process): " + "; ".join(rounds) + ".", ""]
        tuned = [v for v in variants if lat["variants"][v].get("allocator_tuned")]
        lines += ["Tuned allocator (process-wide) in: " + (", ".join(tuned) or "none") + ".", ""]
        if "matmul_2048_gflops" in report:
            lines += [f"2048² fp32 matmul: {report['matmul_2048_gflops']:.0f} GFLOP/s "
                      f"(GFLOP/s above count the eager model's FLOPs: "
                      + ", ".join(f"{k} {v:.1f} GFLOP" for k, v in
                                  lat.get("gflop_per_image", {}).items()) + ").", ""]
    rss = report.get("rss")
    if rss:
        lines += ["| variant | size | peak RSS GB | seconds | tiled |", "|---|---|---|---|---|"]
        for v, per in rss.items():
            for label, m in per.items():
                if "error" in m:
                    lines.append(f"| {v} | {label} | failed | | |")
                else:
                    lines.append(f"| {v} | {label} | {m['peak_rss_gb']:.2f} | "
                                 f"{m['seconds']:.1f} | {'yes' if m['tiled'] else 'no'} |")
        lines.append("")
    q = report.get("quality")
    if q:
        lines += ["| quality | value |", "|---|---|"]
        for v, m in q["variants"].items():
            lines.append(f"| {v} vs eager, PSNR min over {len(m['psnr_db'])} photos @512 | "
                         f"{m['min_psnr_db']:.1f} dB |")
        t = q["tiled_1024"]
        for run in t["runs"]:
            cfg = f"tile {run['config']['tile']}, thumb {run['config']['thumb_size']}"
            lines += [f"| tiled vs full 1024² ({cfg}), PSNR | "
                      f"{run['psnr_vs_full_db']:.1f} dB |",
                      f"| seam ratio, {cfg} (across borders / inside tiles; untiled "
                      f"{run['seam_ratio_untiled_reference']:.2f}) | "
                      f"{run['seams']['ratio']:.2f} |"]
        lines += [f"| receptive field radius (halo {TileConfig().halo}) | "
                  f"{t['receptive_field_px']} px |", ""]
    ts = report.get("torchserve")
    if ts:
        lines += ["| TorchServe workers×threads | start→READY s | first req s | e2e 512² s "
                  "| img/min @1 | @4 | @8 |", "|---|---|---|---|---|---|---|"]
        for key, m in ts.items():
            if not isinstance(m, dict) or "workers" not in m:
                continue
            if "error" in m:
                lines.append(f"| {key} | failed: {m['error'][:60]} | | | | | |")
                continue
            tp = m.get("throughput", {})
            cells = [f"{tp[c]['images_per_min']:.1f}" if c in tp else "" for c in ("1", "4", "8")]
            lines.append(f"| {key} | {m['start_to_ready_s']:.1f} | {m['first_request_s']:.2f} | "
                         f"{m['e2e_median_s']:.3f} | " + " | ".join(cells) + " |")
        lines.append("")
        inproc = ts.get("in_process_full_path_s")
        one = next((m for m in ts.values() if isinstance(m, dict) and "e2e_median_s" in m), None)
        if inproc and one:
            lines += [f"In process, same request (decode + stylize + encode): {inproc:.3f} s; "
                      f"TorchServe e2e ({one['workers']}×{one['threads_per_worker']}) is "
                      f"{(one['e2e_median_s'] / inproc - 1) * 100:+.0f}% of that.", ""]
    return "\n".join(lines)


