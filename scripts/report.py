#!/usr/bin/env python3
"""Tables and plots from strata's outputs (grpo_train's metrics.jsonl, evaluate's summary.json).

  report.py table BEFORE/summary.json AFTER/summary.json [--dataset NAME] [--markdown]
      EM and searches per question by hop count, before vs after training.
  report.py curves --out reward.png [--smooth K] LABEL=RUN_DIR[,RUN_DIR...] ...
      training reward (and EM, searches per trajectory) against step; several runs under one
      label are drawn as their mean with a band of +-1 standard deviation across runs (seeds).
  report.py rewards [--block K] RUN_DIR
      the training reward as text: every step, and the means of blocks of K steps.
  report.py strata --out strata.png RUN_DIR
      mean reward and cross-stratum bias per stratum (number of searches) against step.

Plots need matplotlib (scripts/setup.sh installs it); tables do not.
"""
import argparse
import json
import math
import os
import sys


def load_jsonl(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: {e}")
    return rows


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"{path}: {e}")


def pick_dataset(summary, name):
    ds = summary.get("datasets", {})
    if name:
        if name not in ds:
            sys.exit(f"dataset {name!r} not in summary (have: {', '.join(ds)})")
        return ds[name]
    if len(ds) == 1:
        return next(iter(ds.values()))
    return summary["overall"]


def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def cmd_table(args):
    before = pick_dataset(load_json(args.before), args.dataset)
    after = pick_dataset(load_json(args.after), args.dataset)
    rows = []
    hops = sorted(set(before.get("by_hops", {})) | set(after.get("by_hops", {})), key=lambda h: int(h))
    for h in hops:
        b = before.get("by_hops", {}).get(h, {})
        a = after.get("by_hops", {}).get(h, {})
        rows.append((f"{h}-hop", a.get("n", b.get("n")), b.get("em"), a.get("em"), b.get("searches"), a.get("searches")))
    rows.append(("all", after.get("n"), before.get("em"), after.get("em"), before.get("searches"), after.get("searches")))
    head = ("questions", "n", "EM before", "EM after", "change", "searches before", "searches after")
    out = []
    for r in rows:
        change = None if r[2] is None or r[3] is None else r[3] - r[2]
        out.append((r[0], str(r[1]), fmt(r[2]), fmt(r[3]),
                    "-" if change is None else f"{change:+.1f}", fmt(r[4], 2), fmt(r[5], 2)))
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for r in out:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(head[i]), *(len(r[i]) for r in out)) for i in range(len(head))]
        print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        for r in out:
            print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def smooth(values, k):
    if k <= 1:
        return values
    out = []
    for i in range(len(values)):
        window = values[max(0, i - k + 1): i + 1]
        out.append(sum(window) / len(window))
    return out


def series(rows, key):
    pts = [(r["step"], r[key]) for r in rows if key in r]
    pts.sort()
    return [p[0] for p in pts], [p[1] for p in pts]


def mean_std(runs):
    n = min(len(r) for r in runs)
    mean, std = [], []
    for i in range(n):
        vals = [r[i] for r in runs]
        m = sum(vals) / len(vals)
        mean.append(m)
        std.append(math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals)) if len(vals) > 1 else 0.0)
    return mean, std


def plt_or_exit():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        sys.exit("matplotlib is not installed (scripts/setup.sh installs it)")


def cmd_curves(args):
    plt = plt_or_exit()
    keys = [("reward/mean", "training reward"), ("rollout/searches_per_traj", "searches per trajectory")]
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4))
    for spec in args.runs:
        label, _, dirs = spec.partition("=")
        if not dirs:
            sys.exit(f"expected LABEL=RUN_DIR[,RUN_DIR...], got {spec!r}")
        rows = [load_jsonl(os.path.join(d, "metrics.jsonl")) for d in dirs.split(",")]
        for ax, (key, title) in zip(axes, keys):
            runs = []
            steps = None
            for r in rows:
                s, v = series(r, key)
                runs.append(smooth(v, args.smooth))
                steps = s if steps is None or len(s) < len(steps) else steps
            mean, std = mean_std(runs)
            x = steps[: len(mean)]
            line, = ax.plot(x, mean, label=f"{label} (n={len(runs)})")
            if len(runs) > 1:
                ax.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                                color=line.get_color(), alpha=0.2)
            ax.set_title(title)
            ax.set_xlabel("RL step")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


def cmd_rewards(args):
    """The training reward curve as text: every step, then the means of blocks of steps."""
    rows = load_jsonl(os.path.join(args.run, "metrics.jsonl"))
    steps, rewards = series(rows, "reward/mean")
    if not rewards:
        print(f"no reward/mean in {args.run}/metrics.jsonl")
        return
    _, searches = series(rows, "rollout/searches_per_traj")
    print(f"Training reward (mean EM of the sampled trajectories), {len(rewards)} RL steps:")
    per_line = 10
    for i in range(0, len(rewards), per_line):
        chunk = " ".join(f"{v:.2f}" for v in rewards[i:i + per_line])
        print(f"  steps {steps[i]:3d}-{steps[min(i + per_line, len(steps)) - 1]:3d}: {chunk}")
    k = max(1, min(args.block, len(rewards)))
    blocks = [rewards[i:i + k] for i in range(0, len(rewards), k)]
    means = " -> ".join(f"{sum(b) / len(b):.3f}" for b in blocks)
    print(f"  mean per block of {k} steps: {means}")
    if searches:
        sblocks = [searches[i:i + k] for i in range(0, len(searches), k)]
        print("  searches per trajectory, same blocks: "
              + " -> ".join(f"{sum(b) / len(b):.2f}" for b in sblocks))


def cmd_strata(args):
    plt = plt_or_exit()
    rows = load_jsonl(os.path.join(args.run, "metrics.jsonl"))
    strata = sorted({k.split("/")[1] for r in rows for k in r if k.startswith("stratum/")}, key=int)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for k in strata:
        for ax, what in zip(axes, ("reward", "bias")):
            s, v = series(rows, f"stratum/{k}/{what}")
            if s:
                ax.plot(s, smooth(v, args.smooth), marker=".", label=f"{k} searches")
    axes[0].set_title("mean reward by stratum")
    axes[1].set_title("cross-stratum bias (stratum mean - batch mean)")
    for ax in axes:
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="EM and searches by hop count, before vs after")
    t.add_argument("before")
    t.add_argument("after")
    t.add_argument("--dataset")
    t.add_argument("--markdown", action="store_true")
    c = sub.add_parser("curves", help="training curves, with seed bands")
    c.add_argument("--out", required=True)
    c.add_argument("--smooth", type=int, default=1)
    c.add_argument("runs", nargs="+")
    r = sub.add_parser("rewards", help="the reward curve as text (per step and per block of steps)")
    r.add_argument("--block", type=int, default=5)
    r.add_argument("run")
    s = sub.add_parser("strata", help="reward and bias by stratum")
    s.add_argument("--out", required=True)
    s.add_argument("--smooth", type=int, default=1)
    s.add_argument("run")
    args = p.parse_args()
    {"table": cmd_table, "curves": cmd_curves, "rewards": cmd_rewards, "strata": cmd_strata}[args.cmd](args)


if __name__ == "__main__":
    main()
