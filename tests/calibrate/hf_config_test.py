"""hf_config: which config.json files the harness accepts, and the errors it gives."""

import json
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "calibrate"))
DATA = os.path.join(ROOT, "tests", "data", "calibrate")

import hf_config  # noqa: E402

LLAMA = {
    "architectures": ["LlamaForCausalLM"], "torch_dtype": "bfloat16", "vocab_size": 128,
    "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2,
}


def data(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


def parse(obj, name="c.json"):
    return hf_config.parse(json.dumps(obj, indent=1), name)


class ConfigTest(unittest.TestCase):
    def error(self, obj):
        with self.assertRaises(hf_config.ConfigError) as e:
            parse(obj)
        return str(e.exception)

    def test_test_data_all_parse(self):
        names = sorted(n for n in os.listdir(DATA) if n.endswith(".json"))
        self.assertEqual(len(names), 8)
        for name in names:
            c = hf_config.load(os.path.join(DATA, name))
            self.assertIn(c.architecture, hf_config.ARCHITECTURES, name)

    def test_defaults_follow_hf(self):
        c = parse(LLAMA)
        self.assertEqual(c.head_dim, 16)  # hidden_size / num_attention_heads
        self.assertEqual(c.num_key_value_heads, 2)
        self.assertFalse(c.tie_word_embeddings)
        self.assertFalse(c.qk_norm)
        mha = dict(LLAMA)
        del mha["num_key_value_heads"]
        self.assertEqual(parse(mha).num_key_value_heads, 4)
        qwen = dict(LLAMA, architectures=["Qwen3ForCausalLM"], head_dim=32)
        self.assertTrue(parse(qwen).qk_norm)
        self.assertEqual(parse(qwen).head_dim, 32)

    def test_json_syntax_error_names_line_and_column(self):
        with self.assertRaises(hf_config.ConfigError) as e:
            hf_config.parse('{\n  "vocab_size": 12,\n  "hidden_size": ,\n}', "bad.json")
        self.assertEqual(str(e.exception), "bad.json:3:18: Expecting value")

    def test_unknown_key_is_named(self):
        self.assertEqual(self.error(dict(LLAMA, sliding_windw=4)),
                         "c.json: sliding_windw: unknown key (it may change memory; "
                         "the harness refuses it)")

    def test_unsupported_values_are_named(self):
        self.assertIn("rope_scaling: ", self.error(dict(LLAMA, rope_scaling={"type": "yarn"})))
        self.assertIn("attention_dropout: 0.1 is not supported",
                      self.error(dict(LLAMA, attention_dropout=0.1)))
        self.assertIn("torch_dtype: expected", self.error(dict(LLAMA, torch_dtype="float16")))
        self.assertIn("architectures: expected one of",
                      self.error(dict(LLAMA, architectures=["MixtralForCausalLM"])))

    def test_bad_values_are_named(self):
        missing = dict(LLAMA)
        del missing["hidden_size"]
        self.assertEqual(self.error(missing), "c.json: hidden_size: missing")
        self.assertEqual(self.error(dict(LLAMA, num_key_value_heads=3)),
                         "c.json: num_key_value_heads: 3 does not divide "
                         "num_attention_heads 4")
        self.assertIn("vocab_size: expected an integer", self.error(dict(LLAMA, vocab_size="1")))
        self.assertIn("tie_word_embeddings: expected true or false",
                      self.error(dict(LLAMA, tie_word_embeddings=1)))

    def test_deepseek_checks(self):
        base = data("deepseek_v3_a.json")
        self.assertIn("n_group: 7 does not divide n_routed_experts 64",
                      self.error(dict(base, n_group=7)))
        self.assertIn("num_key_value_heads: MLA needs num_attention_heads",
                      self.error(dict(base, num_key_value_heads=8)))
        self.assertIn("scoring_func: \"softmax\" is not supported",
                      self.error(dict(base, scoring_func="softmax")))
        self.assertIn("q_lora_rank: must be positive, or null",
                      self.error(dict(base, q_lora_rank=0)))
        self.assertIsNone(parse(dict(base, q_lora_rank=None)).q_lora_rank)

    def test_moe_layer_rules(self):
        base = data("deepseek_v3_a.json")
        c = parse(dict(base, num_hidden_layers=6, first_k_dense_replace=1, moe_layer_freq=2))
        self.assertEqual([c.is_moe_layer(i) for i in range(6)],
                         [False, False, True, False, True, False])
        q = data("qwen3_moe_b.json")
        c = parse(dict(q, num_hidden_layers=6, decoder_sparse_step=2, mlp_only_layers=[3]))
        self.assertEqual([c.is_moe_layer(i) for i in range(6)],
                         [False, True, False, False, False, True])
        self.assertIn("mlp_only_layers: layer 9 is not in 0..5",
                      self.error(dict(q, num_hidden_layers=6, mlp_only_layers=[9])))

    def test_file_errors(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "big.json")
            with open(path, "w") as f:
                f.write(" " * (hf_config.MAX_CONFIG_BYTES + 1))
            with self.assertRaises(hf_config.ConfigError) as e:
                hf_config.load(path)
            self.assertIn("larger than", str(e.exception))
            with self.assertRaises(hf_config.ConfigError) as e:
                hf_config.load(os.path.join(d, "absent.json"))
            self.assertIn("absent.json: cannot read", str(e.exception))


if __name__ == "__main__":
    unittest.main()
