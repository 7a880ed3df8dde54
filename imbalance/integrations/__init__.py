"""The environment where RL researchers already work, one import away in each framework.

- `imbalance.integrations.verifiers.load_environment(**kwargs)`: a verifiers (0.3) StatefulToolEnv.
- `imbalance.integrations.trl.ImbalanceToolEnv`: for TRL's `GRPOTrainer(environment_factory=...)`.
- `imbalance.integrations.inspect_task.imbalance`: an Inspect AI `@task`.

Every adapter plays task-set rows (imbalance.tasks) through `episode.TaskEpisode`, which
builds the episode with build_episode and plays it through the RecordingToolbox, exactly as
`python -m imbalance.run` does: the same calls give the same grade. Tool schemas come from
env/tools.py, the prompt from agents/llm/prompt.py. Nothing here is imported by the runner,
and each module imports its framework only when used (they are the `rl` and `inspect` extras).
"""
