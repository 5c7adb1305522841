#include "traces/json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/field_mask_util.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <algorithm>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

namespace stepsim::traces {
namespace {

using google::protobuf::Message;

constexpr char kTypeUrlPrefix[] = "type.googleapis.com";

// Converts messages to JSON; one per thread (a TypeResolver is not shared).
class JsonPrinter {
 public:
  explicit JsonPrinter(const google::protobuf::DescriptorPool* pool)
      : resolver_(google::protobuf::util::NewTypeResolverForDescriptorPool(kTypeUrlPrefix, pool)) {
    options_.add_whitespace = true;
    options_.preserve_proto_field_names = true;
    options_.always_print_primitive_fields = true;
  }

  // Serialized deterministically (map entries sorted by key), then
  // converted from the bytes, which keeps the wire order.
  std::string Print(const Message& message) const {
    std::string bytes;
    {
      google::protobuf::io::StringOutputStream stream(&bytes);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);
      message.SerializeToCodedStream(&coded);
    }
    std::string json;
    auto status = google::protobuf::util::BinaryToJsonString(
        resolver_.get(), std::string(kTypeUrlPrefix) + "/" + message.GetDescriptor()->full_name(),
        bytes, &json, options_);
    if (!status.ok()) return "{}\n";  // only on a protobuf defect; never for our messages
    return json;
  }

 private:
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
  google::protobuf::util::JsonPrintOptions options_;
};

const google::protobuf::DescriptorPool* PoolOf(const Message& message) {
  return message.GetDescriptor()->file()->pool();
}

// `json` (one pretty-printed element, ending in a newline) as it reads
// inside a top-level array: two more spaces on every line. Raw newlines
// only separate lines: inside strings they are escaped.
void AppendIndented(const std::string& json, std::string& out) {
  const size_t end = json.size() - (json.ends_with('\n') ? 1 : 0);
  out += "  ";
  for (size_t i = 0; i < end; ++i) {
    out += json[i];
    if (json[i] == '\n') out += "  ";
  }
}

}  // namespace

std::string ToJson(const Message& message) { return JsonPrinter(PoolOf(message)).Print(message); }

std::string ToJsonByElement(const Message& message, const std::string& field, int threads) {
  const google::protobuf::FieldDescriptor* fd = message.GetDescriptor()->FindFieldByName(field);
  if (fd == nullptr || !fd->is_repeated() || fd->is_map() ||
      fd->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
    return ToJson(message);
  }
  const google::protobuf::Reflection* reflection = message.GetReflection();
  const int count = reflection->FieldSize(message, fd);
  if (count == 0) return ToJson(message);
  // The message without the field, which then prints as `"field": []`.
  google::protobuf::FieldMask others;
  for (int i = 0; i < message.GetDescriptor()->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = message.GetDescriptor()->field(i);
    if (f != fd) others.add_paths(f->name());
  }
  std::unique_ptr<Message> shell(message.New());
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(
      message, others, google::protobuf::util::FieldMaskUtil::MergeOptions(), shell.get());
  const std::string outer = ToJson(*shell);
  const std::string empty = "\n \"" + field + "\": []";
  const size_t at = outer.find(empty);
  if (at == std::string::npos) return ToJson(message);  // not printed as expected

  // Each element on its own, in slices of consecutive elements, one per
  // thread; joined in order, so the bytes do not depend on the threads.
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int slices = std::min(threads, count);
  std::vector<std::string> parts(static_cast<size_t>(slices));
  auto convert = [&](int slice) {
    const JsonPrinter printer(PoolOf(message));
    std::string& part = parts[static_cast<size_t>(slice)];
    for (int i = slice * count / slices; i < (slice + 1) * count / slices; ++i) {
      if (i > 0) part += ",\n";
      AppendIndented(printer.Print(reflection->GetRepeatedMessage(message, fd, i)), part);
    }
  };
  std::vector<std::thread> pool;
  int next = 1;
  for (; next < slices; ++next) {
    try {
      pool.emplace_back(convert, next);
    } catch (const std::system_error&) {
      break;  // no more threads to be had: this one converts the rest
    }
  }
  convert(0);
  for (std::thread& t : pool) t.join();
  for (int slice = next; slice < slices; ++slice) convert(slice);

  std::string out = outer.substr(0, at);
  out += "\n \"" + field + "\": [\n";
  for (const std::string& part : parts) out += part;
  out += "\n ]";
  out += outer.substr(at + empty.size());
  return out;
}

}  // namespace stepsim::traces
