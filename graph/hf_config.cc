#include "graph/hf_config.h"

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>

#include "graph/scenario_text.h"

namespace stepsim::graph {
namespace {

using Json = nlohmann::json;

enum class Family { kLlama, kQwen2, kQwen3, kMixtral, kQwen3Moe, kDeepseek };

struct Architecture {
  const char* name;
  const char* model_type;
  Family family;
  bool tie_default;  // the config class's default for tie_word_embeddings
};

// transformers' config classes (v4.5x): LlamaConfig, MistralConfig, ... all
// default tie_word_embeddings to false.
constexpr Architecture kArchitectures[] = {
    {"LlamaForCausalLM", "llama", Family::kLlama, false},
    {"MistralForCausalLM", "mistral", Family::kLlama, false},
    {"MixtralForCausalLM", "mixtral", Family::kMixtral, false},
    {"Qwen2ForCausalLM", "qwen2", Family::kQwen2, false},
    {"Qwen3ForCausalLM", "qwen3", Family::kQwen3, false},
    {"Qwen3MoeForCausalLM", "qwen3_moe", Family::kQwen3Moe, false},
    {"DeepseekV2ForCausalLM", "deepseek_v2", Family::kDeepseek, false},
    {"DeepseekV3ForCausalLM", "deepseek_v3", Family::kDeepseek, false},
};

// Keys that do not change what training holds in memory: tokenizer ids,
// numerical constants, RoPE frequencies and their scaling (computed on the
// fly, no parameters), storage dtypes of the checkpoint (stepsim's precision
// message decides training precision), inference-only settings, and the
// auxiliary-loss coefficients (scalars). Each family adds its own below.
const std::set<std::string>& HarmlessKeys() {
  static const std::set<std::string> keys = {
      "architectures", "model_type", "_name_or_path", "auto_map", "bos_token_id",
      "eos_token_id", "pad_token_id", "initializer_range", "rms_norm_eps", "rope_theta",
      "rope_scaling", "rope_parameters", "torch_dtype", "dtype", "transformers_version",
      "use_cache", "tokenizer_class", "pretraining_tp", "max_position_embeddings",
      "sliding_window", "use_sliding_window", "max_window_layers", "layer_types",
      "output_router_logits", "router_aux_loss_coef", "aux_loss_alpha", "seq_aux", "ep_size",
      "n_group", "topk_group", "topk_method", "routed_scaling_factor", "quantization_config"};
  return keys;
}

// Reads typed values of the top-level object and places errors at their key.
class Reader {
 public:
  Reader(std::string_view text, std::string_view filename, const Json& root)
      : text_(text), filename_(filename), root_(root) {
    IndexKeys();
  }

  bool Has(const std::string& key) const {
    return root_.contains(key) && !root_.at(key).is_null();
  }

  // Located error at `key` (or at the start of the file).
  Status Error(const std::string& key, const std::string& message) const {
    size_t at = 0;
    const auto it = offsets_.find(key);
    if (it != offsets_.end()) at = it->second;
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return Status::Invalid(LocatedError(text_, filename_, line, col,
                                        key.empty() ? message : "\"" + key + "\": " + message));
  }

  // An integer key; `out` untouched when absent or null.
  Status Int(const std::string& key, int64_t* out) {
    used_.insert(key);
    if (!Has(key)) return Status::Ok();
    const Json& v = root_.at(key);
    if (!v.is_number_integer()) return Error(key, "expected an integer");
    *out = v.get<int64_t>();
    return Status::Ok();
  }
  Status Bool(const std::string& key, bool* out) {
    used_.insert(key);
    if (!Has(key)) return Status::Ok();
    const Json& v = root_.at(key);
    if (!v.is_boolean()) return Error(key, "expected true or false");
    *out = v.get<bool>();
    return Status::Ok();
  }
  Status String(const std::string& key, std::string* out) {
    used_.insert(key);
    if (!Has(key)) return Status::Ok();
    const Json& v = root_.at(key);
    if (!v.is_string()) return Error(key, "expected a string");
    *out = v.get<std::string>();
    return Status::Ok();
  }
  Status Number(const std::string& key, double* out) {
    used_.insert(key);
    if (!Has(key)) return Status::Ok();
    const Json& v = root_.at(key);
    if (!v.is_number()) return Error(key, "expected a number");
    *out = v.get<double>();
    return Status::Ok();
  }
  // A list of integers (mlp_only_layers).
  Status IntList(const std::string& key, std::vector<int64_t>* out) {
    used_.insert(key);
    if (!Has(key)) return Status::Ok();
    const Json& v = root_.at(key);
    if (!v.is_array()) return Error(key, "expected a list of integers");
    for (const Json& x : v) {
      if (!x.is_number_integer()) return Error(key, "expected a list of integers");
      out->push_back(x.get<int64_t>());
    }
    return Status::Ok();
  }
  void Use(const std::string& key) { used_.insert(key); }

  // The first key neither read nor harmless, refused.
  Status RefuseUnread(const std::string& architecture, const std::set<std::string>& harmless) {
    for (const auto& [key, offset] : ordered_) {
      if (used_.count(key) || harmless.count(key) || HarmlessKeys().count(key)) continue;
      return Error(key, "not a key stepsim reads for " + architecture +
                            ", and it may change memory; remove it or describe the model with "
                            "model fields");
    }
    return Status::Ok();
  }

 private:
  // Byte offsets of the top-level object's keys (nlohmann's DOM keeps none).
  void IndexKeys() {
    int depth = 0;
    bool in_string = false, escaped = false, expect_key = false;
    size_t start = 0;
    for (size_t i = 0; i < text_.size(); ++i) {
      const char c = text_[i];
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = false;
          if (expect_key) {
            const std::string key(text_.substr(start + 1, i - start - 1));
            offsets_.emplace(key, start);
            ordered_.emplace_back(key, start);
            expect_key = false;
          }
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
        start = i;
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
        expect_key = depth == 1 && c == '{';
      } else if (c == '}' || c == ']') {
        --depth;
      } else if (c == ',' && depth == 1) {
        expect_key = true;
      }
    }
  }

  std::string_view text_, filename_;
  const Json& root_;
  std::map<std::string, size_t> offsets_;
  std::vector<std::pair<std::string, size_t>> ordered_;
  std::set<std::string> used_;
};

#define STEPSIM_TRY(expr)            \
  do {                               \
    Status _s = (expr);              \
    if (!_s.ok()) return _s;         \
  } while (false)

// Keys every family reads the same way.
Status ReadCommon(Reader& r, const Architecture& arch, Model* m) {
  int64_t v = 0;
  const std::pair<const char*, void (Model::*)(int64_t)> required[] = {
      {"hidden_size", &Model::set_hidden_size},
      {"num_hidden_layers", &Model::set_num_layers},
      {"num_attention_heads", &Model::set_num_attention_heads},
      {"vocab_size", &Model::set_vocab_size}};
  for (const auto& [key, set] : required) {
    if (!r.Has(key)) return r.Error("", std::string("\"") + key + "\" is missing");
    STEPSIM_TRY(r.Int(key, &v));
    (m->*set)(v);
  }
  bool tie = arch.tie_default;
  STEPSIM_TRY(r.Bool("tie_word_embeddings", &tie));
  m->set_tie_embeddings(tie);
  std::string act = "silu";
  STEPSIM_TRY(r.String("hidden_act", &act));
  if (act != "silu") {
    return r.Error("hidden_act", "\"" + act + "\": stepsim models the gated MLP with SiLU "
                                              "(SwiGLU) for " + std::string(arch.name));
  }
  m->set_mlp_activation(SWIGLU);
  m->set_norm(RMSNORM);
  m->set_position_embedding(ROPE);
  double dropout = 0;
  STEPSIM_TRY(r.Number("attention_dropout", &dropout));
  if (dropout != 0) {
    return r.Error("attention_dropout", "is not 0; set conventions.dropout instead");
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    bool bias = false;
    STEPSIM_TRY(r.Bool(key, &bias));
    if (bias) {
      return r.Error(key, "true is not modelled for " + std::string(arch.name) +
                              "; use model.linear_bias or model.qkv_bias");
    }
  }
  int64_t positions = 0;
  STEPSIM_TRY(r.Int("max_position_embeddings", &positions));
  if (positions > 0) m->set_max_position_embeddings(positions);
  return Status::Ok();
}

// Llama, Mistral, Qwen2/3 dense and the attention of Mixtral and Qwen3-MoE.
Status ReadGqa(Reader& r, const Architecture& arch, Model* m) {
  m->set_attention(MHA);
  int64_t groups = m->num_attention_heads(), head_dim = 0;
  STEPSIM_TRY(r.Int("num_key_value_heads", &groups));
  m->set_num_query_groups(groups);
  STEPSIM_TRY(r.Int("head_dim", &head_dim));
  if (head_dim > 0) m->set_kv_channels(head_dim);
  if (arch.family == Family::kQwen2) m->set_qkv_bias(true);  // q/k/v biases, hard-coded
  if (arch.family == Family::kQwen3 || arch.family == Family::kQwen3Moe) m->set_qk_layernorm(true);
  return Status::Ok();
}

Status ReadMixtral(Reader& r, Model* m) {
  int64_t experts = 0, top_k = 0, ffn = 0;
  STEPSIM_TRY(r.Int("num_local_experts", &experts));
  STEPSIM_TRY(r.Int("num_experts_per_tok", &top_k));
  STEPSIM_TRY(r.Int("intermediate_size", &ffn));
  double jitter = 0;
  STEPSIM_TRY(r.Number("router_jitter_noise", &jitter));
  if (jitter != 0) return r.Error("router_jitter_noise", "is not 0; router noise is not modelled");
  m->set_num_routed_experts(experts);
  m->set_moe_top_k(top_k);
  m->set_moe_ffn_hidden_size(ffn);
  m->set_num_shared_experts(0);
  m->set_router_score_function(SOFTMAX);
  m->set_router_normalize_topk(true);  // Mixtral divides the top-k by their sum
  return Status::Ok();
}

Status ReadQwen3Moe(Reader& r, Model* m) {
  int64_t experts = 0, top_k = 0, moe_ffn = 0, ffn = 0, step = 1;
  STEPSIM_TRY(r.Int("num_experts", &experts));
  STEPSIM_TRY(r.Int("num_experts_per_tok", &top_k));
  STEPSIM_TRY(r.Int("moe_intermediate_size", &moe_ffn));
  STEPSIM_TRY(r.Int("intermediate_size", &ffn));
  STEPSIM_TRY(r.Int("decoder_sparse_step", &step));
  bool normalize = false;
  STEPSIM_TRY(r.Bool("norm_topk_prob", &normalize));
  std::vector<int64_t> mlp_only;
  STEPSIM_TRY(r.IntList("mlp_only_layers", &mlp_only));
  if (step < 1) return r.Error("decoder_sparse_step", "must be at least 1");
  m->set_num_routed_experts(experts);
  m->set_moe_top_k(top_k);
  m->set_moe_ffn_hidden_size(moe_ffn);
  m->set_num_shared_experts(0);
  m->set_router_score_function(SOFTMAX);
  m->set_router_normalize_topk(normalize);
  // Qwen3MoeDecoderLayer: layer i has experts when it is not in
  // mlp_only_layers and (i + 1) % decoder_sparse_step == 0.
  bool any_dense = false;
  for (int64_t i = 0; i < m->num_layers(); ++i) {
    bool moe = (i + 1) % step == 0;
    for (int64_t x : mlp_only) moe = moe && x != i;
    any_dense |= !moe;
    m->add_moe_layer_pattern(moe ? 1 : 0);
  }
  if (any_dense) m->set_ffn_hidden_size(ffn);
  if (!any_dense) m->clear_moe_layer_pattern();
  return Status::Ok();
}

Status ReadDeepseek(Reader& r, const Architecture& arch, Model* m) {
  m->set_attention(MLA);
  int64_t kv_heads = m->num_attention_heads();
  STEPSIM_TRY(r.Int("num_key_value_heads", &kv_heads));
  if (kv_heads != m->num_attention_heads()) {
    return r.Error("num_key_value_heads", "differs from num_attention_heads; MLA has one "
                                          "key/value head per query head");
  }
  int64_t v = 0;
  const std::pair<const char*, void (Model::*)(int64_t)> fields[] = {
      {"intermediate_size", &Model::set_ffn_hidden_size},
      {"moe_intermediate_size", &Model::set_moe_ffn_hidden_size},
      {"n_routed_experts", &Model::set_num_routed_experts},
      {"n_shared_experts", &Model::set_num_shared_experts},
      {"num_experts_per_tok", &Model::set_moe_top_k},
      {"first_k_dense_replace", &Model::set_first_dense_layers},
      {"moe_layer_freq", &Model::set_moe_layer_freq},
      {"kv_lora_rank", &Model::set_kv_lora_rank},
      {"qk_nope_head_dim", &Model::set_qk_nope_head_dim},
      {"qk_rope_head_dim", &Model::set_qk_rope_head_dim},
      {"v_head_dim", &Model::set_v_head_dim},
      {"num_nextn_predict_layers", &Model::set_mtp_num_layers}};
  for (const auto& [key, set] : fields) {
    if (!r.Has(key)) {
      r.Use(key);
      continue;
    }
    STEPSIM_TRY(r.Int(key, &v));
    (m->*set)(v);
  }
  // q_lora_rank null: a plain query projection.
  int64_t q_lora = 0;
  STEPSIM_TRY(r.Int("q_lora_rank", &q_lora));
  m->set_q_lora_rank(q_lora);
  std::string scoring = "softmax";
  STEPSIM_TRY(r.String("scoring_func", &scoring));
  if (scoring != "softmax" && scoring != "sigmoid") {
    return r.Error("scoring_func", "\"" + scoring + "\" is neither softmax nor sigmoid");
  }
  m->set_router_score_function(scoring == "sigmoid" ? SIGMOID : SOFTMAX);
  bool normalize = false;
  STEPSIM_TRY(r.Bool("norm_topk_prob", &normalize));
  m->set_router_normalize_topk(normalize);
  if (!m->has_mtp_num_layers()) m->set_mtp_num_layers(0);
  if (!m->has_num_routed_experts()) {
    return r.Error("", std::string("\"n_routed_experts\" is missing for ") + arch.name);
  }
  return Status::Ok();
}

#undef STEPSIM_TRY

// Where parsing `json` fails, as the 1-based offset of the offending
// character, for any of nlohmann's errors: its out_of_range (a number too
// large for a double) carries no position, unlike its parse_error, so the
// text is read again by a SAX pass that only records where it stops.
size_t FailurePosition(std::string_view json) {
  struct Position : Json::json_sax_t {
    size_t at = 0;
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(Json::number_integer_t) override { return true; }
    bool number_unsigned(Json::number_unsigned_t) override { return true; }
    bool number_float(Json::number_float_t, const Json::string_t&) override { return true; }
    bool string(Json::string_t&) override { return true; }
    bool binary(Json::binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(Json::string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t position, const std::string&,
                     const nlohmann::detail::exception&) override {
      at = position;
      return false;
    }
  } sax;
  Json::sax_parse(json.begin(), json.end(), &sax);
  return sax.at;
}

}  // namespace

StatusOr<Model> ModelFromHfConfig(std::string_view json, std::string_view filename) {
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& e) {
    const size_t byte = FailurePosition(json);
    const size_t at = byte == 0 ? 0 : byte - 1;
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < json.size(); ++i) {
      if (json[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    const size_t colon = what.rfind(": ");
    const size_t tag = what.find("] ");  // "[json.exception.out_of_range.406] "
    if (colon != std::string::npos) {
      what = what.substr(colon + 2);
    } else if (tag != std::string::npos) {
      what = what.substr(tag + 2);
    }
    return Status::Invalid(LocatedError(json, filename, line, col, "invalid JSON: " + what));
  }
  if (!root.is_object()) {
    return Status::Invalid(std::string(filename) + ":1:1: a config.json holds a JSON object");
  }
  Reader r(json, filename, root);
  std::string architecture, model_type;
  if (root.contains("architectures")) {
    const Json& a = root.at("architectures");
    if (!a.is_array() || a.empty() || !a.front().is_string()) {
      return r.Error("architectures", "expected a list of architecture names");
    }
    architecture = a.front().get<std::string>();
  }
  if (Status s = r.String("model_type", &model_type); !s.ok()) return s;
  const Architecture* arch = nullptr;
  for (const Architecture& a : kArchitectures) {
    if (architecture.empty() ? model_type == a.model_type : architecture == a.name) arch = &a;
  }
  if (arch == nullptr) {
    std::string known;
    for (const Architecture& a : kArchitectures) known += (known.empty() ? "" : ", ") + std::string(a.name);
    const std::string what = architecture.empty() ? "model_type \"" + model_type + "\""
                                                  : "architecture \"" + architecture + "\"";
    return r.Error(architecture.empty() ? "model_type" : "architectures",
                   what + " is not one stepsim reads (" + known + ")");
  }
  Model m;
  std::string name;
  if (Status s = r.String("_name_or_path", &name); !s.ok()) return s;
  m.set_name(name.empty() ? arch->name : name);
  if (Status s = ReadCommon(r, *arch, &m); !s.ok()) return s;
  Status s;
  switch (arch->family) {
    case Family::kLlama:
    case Family::kQwen2:
    case Family::kQwen3: {
      s = ReadGqa(r, *arch, &m);
      int64_t ffn = 0;
      if (s.ok()) s = r.Int("intermediate_size", &ffn);
      m.set_ffn_hidden_size(ffn);
      m.set_num_routed_experts(0);
      break;
    }
    case Family::kMixtral:
      s = ReadGqa(r, *arch, &m);
      if (s.ok()) s = ReadMixtral(r, &m);
      break;
    case Family::kQwen3Moe:
      s = ReadGqa(r, *arch, &m);
      if (s.ok()) s = ReadQwen3Moe(r, &m);
      break;
    case Family::kDeepseek:
      s = ReadDeepseek(r, *arch, &m);
      break;
  }
  if (!s.ok()) return s;
  // Keys a family's config class defines but stepsim does not need.
  const std::set<std::string> family_harmless = {"norm_topk_prob"};
  if (Status refused = r.RefuseUnread(arch->name, family_harmless); !refused.ok()) return refused;
  return m;
}

Status ApplyHfConfig(std::string_view json, std::string_view filename, Scenario* scenario) {
  if (scenario->model().has_preset()) {
    return Status::Invalid(
        "model.hf_config: a model comes from a preset or a config.json, not both "
        "(model.preset is set too)");
  }
  StatusOr<Model> from_file = ModelFromHfConfig(json, filename);
  if (!from_file.ok()) return from_file.status();
  Model explicit_fields = scenario->model();
  explicit_fields.clear_hf_config();
  Model merged = std::move(*from_file);
  if (explicit_fields.moe_layer_pattern_size() > 0 || explicit_fields.has_first_dense_layers() ||
      explicit_fields.has_moe_layer_freq()) {
    merged.clear_moe_layer_pattern();
    merged.clear_first_dense_layers();
    merged.clear_moe_layer_freq();
  }
  merged.MergeFrom(explicit_fields);
  *scenario->mutable_model() = std::move(merged);
  return Status::Ok();
}

}  // namespace stepsim::graph
