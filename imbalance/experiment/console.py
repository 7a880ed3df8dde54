"""The terminal account of an episode: one line per tool call, then the grade.

The full record lives in MLflow; this is what a person watching the run reads. With many
episodes in flight in one process (the concurrent launcher) the account shrinks to the grade
line, prefixed with the job, or to nothing when the sweep prints a progress line per episode.
"""

from __future__ import annotations

import logging
import re

from imbalance.env.tools import format_call

log = logging.getLogger("imbalance")


MODES = ("full", "summary", "silent")


class EpisodeConsole:
    def __init__(self, max_steps: int, mode: str = "full", prefix: str = ""):
        self.max_steps, self.mode, self.prefix = max_steps, mode, prefix
        self.spent = 0

    def header(self, title: str, task: str) -> None:
        if self.mode != "full":
            return
        log.info(title)
        log.info("task: %s", task)
        log.info("%4s  %-36s %-9s %7s %7s  %s", "#", "tool call", "cost", "val F1", "thresh", "effect")

    def on_call(self, record: dict, metrics: dict) -> None:
        if self.mode != "full":
            return
        call = format_call(record["tool"], record["arguments"])
        if len(call) > 36:
            call = call[:33] + "..."
        if record["invalid"]:
            cost = "invalid"
        elif record["charged"]:
            self.spent += 1
            cost = f"paid {self.spent}/{self.max_steps}"
        else:
            cost = "free"
        log.info("%4d  %-36s %-9s %7.4f %7.4f  %s", record["index"], call, cost, metrics["val_f1"], metrics["threshold"], _effect(record))

    def footer(self, result, tau: float, run_hint: str | None, normalized_reward: float | None = None) -> None:
        if self.mode == "silent":
            return
        p = self.prefix
        extra = f"{result.steps_used}/{self.max_steps} paid steps, {result.tool_calls} tool calls, {result.invalid_tool_calls} invalid, {result.wall_seconds:.1f} s"
        if result.grade is None:
            log.info("%sERROR: the episode could not finish: %s (%s)", p, result.error_message, extra)
        else:
            g = result.grade
            verdict = "PASS" if g.passed else "FAIL"
            relation = ">=" if g.test_f1 >= tau else "<"
            how = "" if result.termination_reason == "submitted" else f" [{result.termination_reason}{': ' + result.limit if result.limit else ''}]"
            log.info("%sTEST F1 %.4f %s tau %.4g: %s%s (%s)", p, g.test_f1, relation, tau, verdict, how, extra)
            if normalized_reward is not None and self.mode == "full":
                log.info("reward %.4f (normalized: baseline TEST F1 %.4f is 0, the oracle's 1)", normalized_reward, g.baseline_test_f1)
        if run_hint and self.mode == "full":
            log.info(run_hint)


def _effect(record: dict) -> str:
    if "error" in record:
        return f"{record['error']['error']}: {record['error']['message']}"[:100]
    out = record["result"]
    tool = record["tool"]
    if out.get("applied") is False:
        return out.get("message", "no change")
    if tool == "imbalance_start":
        return f"train {out['train']['rows']} rows ({out['train']['positives']} pos), val {out['val']['rows']} ({out['val']['positives']} pos), baseline val F1 {out['baseline_val_f1']:.4f}"
    if tool == "smote":
        return f"train now {out['train_rows']} rows, minority {out['minority_frac']:.3f}; retrained"
    if tool in ("set_class_weights", "use_focal"):
        return "retrained"
    if tool == "train":
        return f"{out['trained_epochs']} epochs" + (f" ({out['note']})" if "note" in out else "")
    if tool == "eval_on_val":
        return f"precision {out['val_precision']:.3f} recall {out['val_recall']:.3f} PR-AUC {out['pr_auc']:.4f}"
    if tool == "sweep_thresholds":
        return f"best threshold ({out['search']})"
    if tool == "get_budget":
        return f"{out['remaining']} paid actions left"
    if tool == "submit_answer":
        return "submitted"
    return ""


class RetryLines(logging.Filter):
    """The LLM SDKs log each retry as `Retrying request to /v1/messages in 0.482000 seconds`;
    on the console it becomes `  anthropic API: retry in 0.5 s` (retry counts where the SDK gives them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.endswith("._base_client") and str(record.msg).startswith("Retrying request"):
            text = record.getMessage()
            seconds = re.search(r"in ([0-9.]+) seconds", text)
            count = re.search(r"\((retry \d+ of \d+)\)", text)
            api = record.name.split(".")[0]
            record.msg = f"  {api} API: retry in {float(seconds[1]) if seconds else 0:.1f} s" + (f" ({count[1]})" if count else "")
            record.args = None
        return True
