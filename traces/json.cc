#include "traces/json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <memory>

namespace stepsim::traces {

std::string ToJson(const google::protobuf::Message& message) {
  // Serialize deterministically (map entries sorted by key), then convert the
  // bytes to JSON, which preserves the wire order.
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  const google::protobuf::DescriptorPool* pool = message.GetDescriptor()->file()->pool();
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver(
      google::protobuf::util::NewTypeResolverForDescriptorPool("type.googleapis.com", pool));
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  auto status = google::protobuf::util::BinaryToJsonString(
      resolver.get(), "type.googleapis.com/" + message.GetDescriptor()->full_name(), bytes,
      &json, options);
  if (!status.ok()) return "{}\n";  // only on a protobuf defect; never for our messages
  return json;
}

}  // namespace stepsim::traces
