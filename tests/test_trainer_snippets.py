"""Every python snippet of README.md and docs/trainers.md runs, offline: verifiers against the
scripted OpenAI-compatible server, TRL's GRPOTrainer one step on a tiny local model, Inspect
with its mockllm model. (The datasets snippet runs in test_export.py, on an exported file.)"""

from __future__ import annotations

import json

import pytest

from tests.fake_llm import FakeLLM, reply
from tests.helpers import TRAINER_DOCS, cli_env, python_snippets, run_snippet, snippet_using

# Which test runs the snippets that mention each marker.
MARKERS = {
    "imbalance.integrations.verifiers": "test_the_verifiers_snippet_evaluates_against_an_openai_compatible_server",
    "imbalance.integrations.trl": "test_the_trl_snippet_trains_one_grpo_step",
    "imbalance.integrations.inspect_task": "test_the_inspect_snippet_evaluates_with_epochs",
    "imbalance.tasks": "test_the_task_set_snippet_runs",
    "load_dataset(": "tests/test_export.py::test_a_heuristic_sweep_exports_an_sft_set_that_loads_with_datasets",
    "GenericEnvClient": "tests/test_server.py::test_the_readme_client_snippet_plays_an_episode",
}
SCRIPT = [reply(("imbalance_start", {})), reply(("train", {"epochs": 2})), reply(("sweep_thresholds", {})), reply(("submit_answer", {}))]


def test_every_trainer_snippet_is_run_by_a_test():
    snippets = python_snippets(*TRAINER_DOCS)
    assert {doc for doc, _, _ in snippets} == {"README.md", "trainers.md"}
    for doc, line, code in snippets:
        owners = [marker for marker in MARKERS if marker in code]
        assert len(owners) == 1, f"{doc}:{line}: no single test runs this snippet (markers {owners})"
    assert all(any(marker in code for _, _, code in snippets) for marker in MARKERS)


@pytest.mark.slow
def test_the_verifiers_snippet_evaluates_against_an_openai_compatible_server(tmp_path):
    with FakeLLM(plan=SCRIPT) as server:
        env = cli_env(OPENAI_BASE_URL=server.openai_url, OPENAI_API_KEY="local")
        proc = run_snippet(snippet_using("imbalance.integrations.verifiers"), tmp_path, env)
        requests = len(server.requests)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reward, test_f1 = map(float, proc.stdout.split()[-2:])
    assert reward in (0.0, 0.25, 0.5, 0.75, 1.0) and 0.0 < test_f1 < 1.0
    assert requests == 4 * len(SCRIPT)  # 2 examples x 2 rollouts, each to submit_answer


@pytest.mark.slow
def test_the_task_set_snippet_runs(tmp_path):
    from imbalance.tasks import load_taskset

    proc = run_snippet(snippet_using("imbalance.tasks"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = load_taskset("lite")[0]
    assert proc.stdout.split()[:3] == [str(row["seed"]), "0.585", row["task_id"]]


def tiny_chat_model(folder) -> str:
    """A one-layer Qwen2 with a character-level tokenizer and TRL's qwen2.5 chat template
    (which TRL knows how to parse tool calls from): a model TRL loads from a path, offline."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from trl.chat_template_utils import qwen2_5_chat_template

    specials, added = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
    vocab = {t: i for i, t in enumerate([*specials, *added, "[UNK]", *(chr(c) for c in range(32, 127)), "\n", "\t"])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="[UNK]")
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.add_tokens(added)
    tokenizer.chat_template = qwen2_5_chat_template
    tokenizer.padding_side = "left"
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=32768, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.slow
def test_the_trl_snippet_trains_one_grpo_step(tmp_path):
    model = tiny_chat_model(tmp_path / "tiny-qwen")
    env = cli_env(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), TRL_EXPERIMENTAL_SILENCE="1", TOKENIZERS_PARALLELISM="false")
    proc = run_snippet(
        snippet_using("imbalance.integrations.trl"), tmp_path, env,
        replace=(
            ('model="Qwen/Qwen3-0.6B"', f"model={model!r}"),
            ("GRPOConfig(", 'GRPOConfig(output_dir="trl-out", max_steps=1, per_device_train_batch_size=2, num_generations=2, max_completion_length=32, '
                            'use_cpu=True, report_to="none", save_strategy="no", logging_steps=1, '),
        ),
        epilogue="import json\nprint(json.dumps(trainer.state.log_history))\n",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (step, _summary) = json.loads(proc.stdout.strip().splitlines()[-1])
    # TRL built an environment per rollout, reset it from the row and asked it for the reward.
    assert "rewards/ImbalanceToolEnv/mean" in step and 0.0 <= step["rewards/ImbalanceToolEnv/mean"] <= 1.0


MOCK = '''
from inspect_ai.model import ChatMessageAssistant, ModelOutput, ModelUsage, get_model
from inspect_ai.tool import ToolCall

TURNS = [("imbalance_start", {}), ("train", {"epochs": 2}), ("sweep_thresholds", {}), ("submit_answer", {})]


def answer(messages, tools, tool_choice, config):
    turn = sum(1 for m in messages if m.role == "assistant")
    if turn < len(TURNS):
        call = ToolCall(id=f"call_{turn}", function=TURNS[turn][0], arguments=TURNS[turn][1])
        output = ModelOutput.from_message(ChatMessageAssistant(content="", tool_calls=[call], model="mockllm/model"), stop_reason="tool_calls")
    else:
        output = ModelOutput.from_content("mockllm/model", "done")
    output.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)  # else mockllm fetches a tokenizer file
    return output


MOCK = get_model("mockllm/model", custom_outputs=answer)
'''


@pytest.mark.slow
def test_the_inspect_snippet_evaluates_with_epochs(tmp_path):
    env = cli_env(XDG_DATA_HOME=str(tmp_path / "xdg"))
    proc = run_snippet(
        snippet_using("imbalance.integrations.inspect_task"), tmp_path, env,
        replace=(('model="openai/gpt-4o-mini"', "model=MOCK"), ("Epochs(4,", "Epochs(2,"),
                 ("eval(imbalance_task(),", 'eval(imbalance_task(), limit=1, log_dir="logs", display="none",')),
        prelude=MOCK,
        epilogue="print(logs[0].status, [(s.reducer, s.metrics['accuracy'].value) for s in logs[0].results.scores])\n",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("success [('mean', ")
    assert list((tmp_path / "logs").glob("*.eval"))
