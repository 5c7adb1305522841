#!/usr/bin/python3
"""Measures what a Hugging Face-style eager model keeps and allocates in a training step.

  /usr/bin/python3 tools/calibrate/measure.py CONFIG.json --micro-batch-size B \\
      --seq-len S --microbatches M --out X.json

Builds the model of CONFIG.json (tools/calibrate/model.py, parameters in the config's
torch_dtype), AdamW on every parameter, and seeded random token ids (labels = input_ids).
Then, single-threaded on CPU:
  1. a warm-up step (M micro-batches, optimizer step, zero_grad), so AdamW state exists;
  2. the forward of the next step's micro-batch 0 under saved-tensor hooks: what autograd
     keeps, per tensor and per module (saved_tensors.py); the graph is then dropped;
  3. that next step under torch.profiler with memory events (step_memory.py).
Writes one JSON document (schema in tools/calibrate/README.md): keys sorted, bytes as
integers, no times, so the same arguments give the same bytes. The file is written whole
or not at all. Exit status: 0 ok, 2 bad input (the message names the file, line and
column, or the key or option), 1 the run failed (including a failed self-check).
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import hf_config  # noqa: E402
import model as models  # noqa: E402
import saved_tensors  # noqa: E402
import step_memory  # noqa: E402
import step_summary  # noqa: E402

SCHEMA = "stepsim.calibrate.v1"
MAX_TOKENS = 1 << 16  # b * s per micro-batch: a CPU harness, not a benchmark
MAX_MICROBATCHES = 64


class UsageError(ValueError):
    pass


def _positive(name, limit):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected an integer, got {text!r}")
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{name}: {value} is not in 1..{limit}")
        return value
    return parse


def parse_args(argv):
    p = argparse.ArgumentParser(prog="measure.py", description=__doc__.splitlines()[1])
    p.add_argument("config", help="a Hugging Face config.json")
    p.add_argument("--micro-batch-size", required=True,
                   type=_positive("--micro-batch-size", MAX_TOKENS))
    p.add_argument("--seq-len", required=True, type=_positive("--seq-len", MAX_TOKENS))
    p.add_argument("--microbatches", required=True,
                   type=_positive("--microbatches", MAX_MICROBATCHES))
    p.add_argument("--out", required=True, help="the JSON file to write, or - for stdout")
    p.add_argument("--seed", type=_positive("--seed", 1 << 31), default=1,
                   help="seeds the weights and the token ids (default 1)")
    p.add_argument("--balanced-routing", action="store_true",
                   help="force every expert to get tokens*top_k/experts token copies "
                        "(model.py explains how); default: the router's own choice")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="model.gradient_checkpointing_enable(): every decoder layer under "
                        "torch.utils.checkpoint (use_reentrant=True)")
    p.add_argument("--checkpoint-layers", type=_positive("--checkpoint-layers", 1 << 16),
                   help="with --gradient-checkpointing: only the first N decoder layers")
    p.add_argument("--foreach", action="store_true",
                   help="AdamW's multi-tensor (foreach) implementation; default: torch "
                        "1.13's default, the per-parameter loop")
    args = p.parse_args(argv)
    if args.checkpoint_layers is not None and not args.gradient_checkpointing:
        p.error("--checkpoint-layers: needs --gradient-checkpointing")
    if args.micro_batch_size * args.seq_len > MAX_TOKENS:
        p.error(f"--micro-batch-size * --seq-len: {args.micro_batch_size * args.seq_len} "
                f"tokens exceeds {MAX_TOKENS}")
    return args


def token_batches(config, args, generator, count):
    return [torch.randint(0, config.vocab_size, (args.micro_batch_size, args.seq_len),
                          generator=generator) for _ in range(count)]


def measure(config, args) -> dict:
    torch.set_num_threads(1)
    model = models.build(config, args.seed)
    models.set_balanced_routing(model, args.balanced_routing)
    if args.gradient_checkpointing:
        models.set_gradient_checkpointing(model, args.checkpoint_layers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=args.foreach)
    generator = torch.Generator().manual_seed(args.seed)
    m = args.microbatches

    warmup = token_batches(config, args, generator, m)
    step_memory.train_step(model, optimizer, warmup)
    del warmup
    batches = token_batches(config, args, generator, m)

    kept = saved_tensors.measure(
        model, lambda: step_memory.micro_batch_loss(model, batches[0], m),
        inputs=batches[:1])
    kept_tokens = {name: list(block.tokens_per_expert)
                   for name, block in models.moe_blocks(model)}
    step = step_memory.profile(model, optimizer, batches)
    summary = step_summary.summarize(step, kept.total_bytes, kept.input_bytes,
                                     kept.host_bytes)

    params = list(model.parameters())
    return {
        "schema": SCHEMA,
        "torch_version": torch.__version__,
        "config_file": os.path.basename(args.config),
        "model": config.to_json(),
        "run": {"micro_batch_size": args.micro_batch_size, "seq_len": args.seq_len,
                "microbatches": m, "seed": args.seed, "threads": 1, "device": "cpu",
                "optimizer": {"name": "AdamW", "foreach": bool(args.foreach),
                              "lr": "1e-4", "weight_decay": "0.01"},
                "routing": "balanced" if args.balanced_routing else "router",
                "gradient_checkpointing": (
                    "off" if not args.gradient_checkpointing else "all layers"
                    if args.checkpoint_layers is None
                    else f"first {args.checkpoint_layers} layers"),
                "labels": "input_ids (shifted inside the loss)"},
        "parameters": {"count": sum(p.numel() for p in params),
                       "bytes": sum(p.numel() * p.element_size() for p in params),
                       "tensors": len(params)},
        "forward": {
            "kept_bytes": kept.total_bytes,
            "kept_input_bytes": kept.input_bytes,
            "host_bytes": kept.host_bytes,
            "model_state_bytes": kept.model_state_bytes,
            "module_bytes": kept.module_total_bytes(),
            "module_self_bytes": kept.module_self_bytes(),
            "tokens_per_expert": kept_tokens,
            "tensors": [t.to_json() for t in kept.tensors],
        },
        "step": summary,
    }


def write_json(doc, out):
    text = json.dumps(doc, sort_keys=True, indent=1) + "\n"
    if out == "-":
        sys.stdout.write(text)
        return
    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=".measure-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would survive the rename
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        config = hf_config.load(args.config)
    except hf_config.ConfigError as e:
        print(f"measure.py: {e}", file=sys.stderr)
        return 2
    out_dir = os.path.dirname(os.path.abspath(args.out)) if args.out != "-" else "."
    if not os.path.isdir(out_dir):
        print(f"measure.py: --out: no directory {out_dir}", file=sys.stderr)
        return 2
    try:
        doc = measure(config, args)
    except (RuntimeError, MemoryError) as e:  # torch's errors, out of memory
        print(f"measure.py: the run failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    try:
        write_json(doc, args.out)
    except OSError as e:
        print(f"measure.py: --out: cannot write {args.out}: {e.strerror}", file=sys.stderr)
        return 1
    if not doc["step"]["checks"]["ok"]:
        print("measure.py: a self-check failed; see step.checks in " + args.out,
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
