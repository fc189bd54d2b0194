"""Trainer-specific example files added to a bundle exported as trl, verl or openrlhf."""

from __future__ import annotations


def for_trainer(fmt: str, *, name: str, pairwise: bool, reference_column: str) -> dict:
    if fmt == "trl":
        extra = (f"\n# The dataset needs a '{reference_column}' column (the response each "
                 "completion is compared with),\n# or set RUBRICLAB_PAIRWISE_MODE=group.\n"
                 if pairwise else "")
        return {"train_trl.py": f'''"""GRPO with the exported judge as the reward (TRL)."""
from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

from reward import async_reward_func, reward_func  # noqa: F401 (either works)
{extra}
dataset = load_dataset("json", data_files="prompts.jsonl", split="train")  # a "prompt" column
trainer = GRPOTrainer(
    model="Qwen/Qwen2.5-0.5B-Instruct",
    reward_funcs=[reward_func],  # logged as rewards/{name}/mean
    args=GRPOConfig(output_dir="grpo-{name}", num_generations=4),
    train_dataset=dataset,
)
trainer.train()
'''.encode()}
    if fmt == "verl":
        reference_note = "\n# ground_truth is the reference response." if pairwise else ""
        return {"verl_reward.yaml": f'''# verl >= 0.9
reward:
  custom_reward_function:
    path: ./reward.py
    name: compute_score
# verl < 0.9 uses the same two keys at the top level:
# custom_reward_function:
#   path: ./reward.py
#   name: compute_score
#
# Put the prompt in extra_info["prompt"] when you write the parquet files.{reference_note}
# Judge: {name}
'''.encode()}
    return {"openrlhf_reward.sh": f'''#!/bin/sh
# Serve the exported judge over HTTP and point OpenRLHF at it.
python reward.py serve --port 5000 &
# ... then in your OpenRLHF launch command:
#   --reward.remote_url http://127.0.0.1:5000/get_reward     (--remote_rm_url in older releases)
# Labels (--label_key) {"are the reference responses" if pairwise else "are passed as references"}.
# Judge: {name}
'''.encode()}
