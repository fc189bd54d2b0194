"""Two GRPO optimisation steps with TRL on the CPU, the exported judge as the reward.

Run by test_trl_grpo.py in a process of its own (torch stays out of the pytest process):

    python trl_grpo_run.py BUNDLE_DIR OUT.json

Nothing is downloaded (HF_HUB_OFFLINE=1): the model is a one-layer Llama with hidden size 32,
randomly initialised from a config, and the tokenizer a byte-level BPE trained here in memory.
Both reward functions of the bundle are given to GRPOTrainer, the sync one and the async one,
each wrapped only to record the arguments TRL passes. OUT.json gets what the test asserts on.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")


def tiny_tokenizer(texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>")


def tiny_model(tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config)


def recorded(function, calls):
    """`function` with the same name and kind (sync / async), recording each call's arguments."""
    def note(args, kwargs, rewards):
        calls.append({"name": function.__name__, "positional": len(args),
                      "keys": sorted(kwargs), "n": len(kwargs.get("completions") or []),
                      "topic": list(kwargs.get("topic") or []),
                      "trainer_state_step": getattr(kwargs.get("trainer_state"),
                                                    "global_step", None),
                      "log_extra": callable(kwargs.get("log_extra")),
                      "log_metric": callable(kwargs.get("log_metric")),
                      "rewards": rewards})

    if asyncio.iscoroutinefunction(function):
        async def wrapper(*args, **kwargs):
            rewards = await function(*args, **kwargs)
            note(args, kwargs, rewards)
            return rewards
    else:
        def wrapper(*args, **kwargs):
            rewards = function(*args, **kwargs)
            note(args, kwargs, rewards)
            return rewards
    wrapper.__name__ = function.__name__
    return wrapper


def main(bundle: str, out_path: str) -> None:
    began = time.monotonic()
    sys.path.insert(0, bundle)
    import reward  # the bundle's module, as a trainer imports it
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    prompts = [f"Question {n}: what is {n} + {n}?" for n in range(8)]
    dataset = Dataset.from_dict({
        "prompt": prompts,
        "topic": [f"arithmetic-{n % 2}" for n in range(8)],  # an extra column
    })
    tokenizer = tiny_tokenizer(prompts * 4 + ["The answer is 42."] * 4)
    model = tiny_model(tokenizer)
    calls: list[dict] = []
    logs: list[dict] = []

    class KeepLogs(TrainerCallback):
        def on_log(self, args, state, control, logs_=None, **kwargs):
            logs.append(dict(kwargs.get("logs") or logs_ or {}))

    config = GRPOConfig(
        output_dir=os.path.join(os.path.dirname(out_path), "grpo"),
        max_steps=2, per_device_train_batch_size=4, num_generations=2,
        gradient_accumulation_steps=1, max_completion_length=8, learning_rate=1e-3,
        logging_steps=1, save_strategy="no", report_to=[], bf16=False, fp16=False,
        use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, args=config, train_dataset=dataset,
        reward_funcs=[recorded(reward.reward_func, calls),
                      recorded(reward.async_reward_func, calls)],
        callbacks=[KeepLogs()],
    )
    trained = time.monotonic()
    result = trainer.train()
    finished = time.monotonic()
    history = [entry for entry in trainer.state.log_history]
    # With torch installed, OpenRLHF's positional call gets tensors back.
    openrlhf = reward.reward_func([p + " It is 2." for p in prompts[:2]], prompts[:2], None)
    tensors = {key: type(value).__name__ for key, value in openrlhf.items()}
    tensors["extra_logs"] = {k: type(v).__name__ for k, v in openrlhf["extra_logs"].items()}

    def finite(value):
        return isinstance(value, int | float) and math.isfinite(value)

    with open(out_path, "w") as fh:
        json.dump({
            "global_step": trainer.state.global_step,
            "train_loss_finite": finite(result.training_loss),
            "history": [{k: v for k, v in entry.items() if finite(v) or isinstance(v, str)}
                        for entry in history],
            "history_keys": sorted({k for entry in history for k in entry}),
            "calls": calls,
            "names": [reward.reward_func.__name__, reward.async_reward_func.__name__],
            "judge_stats": reward.get_judge().stats,
            "openrlhf_types": tensors,
            "seconds": {"setup": trained - began, "train": finished - trained},
        }, fh, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
