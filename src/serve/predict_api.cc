#include "serve/predict_api.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "features/online.h"
#include "serve/features_json.h"
#include "serve/lookup.h"

namespace keel::serve {
namespace {

using Json = nlohmann::ordered_json;
using table::DataType;
using Clock = std::chrono::steady_clock;

int64_t MicrosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
}

std::string NewRequestId() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  // 16 hex digits of the seed, 8 of the counter.
  static const char* const kHex = "0123456789abcdef";
  std::string text(24, '0');
  uint64_t count = counter.fetch_add(1) & 0xffffffffu;
  for (int i = 0; i < 16; ++i) text[static_cast<size_t>(i)] = kHex[(seed >> (60 - 4 * i)) & 15];
  for (int i = 0; i < 8; ++i)
    text[static_cast<size_t>(16 + i)] = kHex[(count >> (28 - 4 * i)) & 15];
  return text;
}

// A string column that a request input expression reads becomes a
// timestamp column when every value is a time (training's spine had it
// typed); then the request inputs are computed as training did.
Status AddRequestInputs(const ServingModel& model, table::Table* rows) {
  const train::RequestInputPlan& plan = model.request_plan();
  Status unparsed;  // the first value that is not a time, reported if binding fails
  for (size_t input = 0; input < plan.inputs().size(); ++input) {
    for (const std::string& name : plan.referenced(input)) {
      int index = rows->FindColumn(name);
      if (index < 0) continue;
      const table::Column& column = rows->column(static_cast<size_t>(index));
      if (column.type() != DataType::kString) continue;
      table::Column times(DataType::kTimestamp, 0);
      times.Reserve(column.size());
      bool all = true;
      for (size_t row = 0; row < column.size() && all; ++row) {
        if (!column.IsValid(row)) {
          times.AppendNull();
          continue;
        }
        Result<Timestamp> parsed = ParseTimestamp(column.StringAt(row));
        if (!parsed.ok()) {
          all = false;
          if (unparsed.ok()) {
            unparsed = parsed.status().WithContext("rows[" + std::to_string(row) + "]." + name);
          }
          break;
        }
        times.AppendInt64(*parsed);
      }
      if (all) RETURN_IF_ERROR(rows->ReplaceColumn(static_cast<size_t>(index), std::move(times)));
    }
  }
  for (const train::RequestInput& input : plan.inputs()) {
    if (input.expression.empty() && rows->FindColumn(input.name) < 0) {
      std::string list;
      for (const train::RequestInput& item : plan.inputs()) {
        list += (list.empty() ? "" : ", ") + item.name;
      }
      return InvalidArgument("rows: request input '" + input.name +
                             "' missing (the model's request inputs: " + list + ")");
    }
  }
  Status added = plan.AddTo(rows);
  if (!added.ok()) return unparsed.ok() ? InvalidArgument(added.message()) : unparsed;
  return Status::Ok();
}

const char* FeatureStatusText(features::FeatureStatus status) {
  switch (status) {
    case features::FeatureStatus::kPresent:
    case features::FeatureStatus::kNullValue:
      return "present";
    case features::FeatureStatus::kOutsideMaxAge:
      return "stale";
    default:
      return "missing";
  }
}

// The request's columns plus the features read (or, without features, null
// columns of the view inputs' types).
Result<table::Table> ModelInputs(const ServingModel& model, const table::Table& rows,
                                 const features::OnlineFeatures* read) {
  table::Table inputs;
  for (const ModelInput& input : model.inputs()) {
    if (input.from_request) {
      ASSIGN_OR_RETURN(const table::Column* column, rows.GetColumn(input.name));
      RETURN_IF_ERROR(inputs.AddColumn(input.name, *column));
      continue;
    }
    const table::Column* found = nullptr;
    if (read != nullptr) {
      for (size_t index = 0; index < read->names.size(); ++index) {
        if (read->names[index] == input.name) found = &read->values[index];
      }
      if (found == nullptr) {
        return Internal("feature '" + input.name + "' was not read from the online store");
      }
      RETURN_IF_ERROR(inputs.AddColumn(input.name, *found));
      continue;
    }
    table::Column nulls(input.type, 0);
    for (size_t row = 0; row < rows.num_rows(); ++row) nulls.AppendNull();
    RETURN_IF_ERROR(inputs.AddColumn(input.name, std::move(nulls)));
  }
  return inputs;
}

// The row path's raw inputs: row after row, model->inputs() values each,
// from the request's columns and the features read. Returns false when a
// column is not there (the table path names the error).
bool GatherRows(const ServingModel& model, const table::Table& rows,
                const features::OnlineFeatures& read, std::vector<RowValue>* out) {
  size_t count = rows.num_rows();
  size_t width = model.inputs().size();
  out->resize(count * width);
  for (size_t col = 0; col < width; ++col) {
    const ModelInput& input = model.inputs()[col];
    const table::Column* column = nullptr;
    if (input.from_request) {
      int index = rows.FindColumn(input.name);
      if (index >= 0) column = &rows.column(static_cast<size_t>(index));
    } else {
      // The last of equal names, as ModelInputs takes it.
      for (size_t index = read.names.size(); index-- > 0;) {
        if (read.names[index] == input.name) {
          column = &read.values[index];
          break;
        }
      }
    }
    if (column == nullptr || column->size() != count) return false;
    for (size_t row = 0; row < count; ++row) (*out)[row * width + col] = RowValueAt(*column, row);
  }
  return true;
}

void AppendDouble(double value, std::string* out) {
  if (!std::isfinite(value)) {
    *out += "null";
    return;
  }
  // The shortest text that reads back as the same double.
  char text[32];
  auto written = std::to_chars(text, text + sizeof(text), value);
  out->append(text, written.ptr);
}

// Answers one prediction request; fills `event` (model and version once the
// model is known; the rest for an answered request).
Reply PredictImpl(const PredictContext& context, const HttpRequest& http, PredictionEvent* filled) {
  Clock::time_point start = Clock::now();
  const std::string& name = http.captures.at(0);
  std::shared_ptr<const ServingModel> model = context.models->Get(name);
  if (model != nullptr) {
    filled->model = name;
    filled->version = model->version();
  }
  if (model == nullptr) {
    if (context.models->Has(name)) {
      return ErrorReply(503, "model '" + name + "' has no loaded version yet (see /v2/models/" +
                                 name + "/ready)");
    }
    std::string names;
    for (const std::string& served : context.models->Names()) {
      names += (names.empty() ? "" : ", ") + served;
    }
    return ErrorReply(404, "unknown model '" + name + "' (served: " + names + ")");
  }
  PredictRequest request;
  if (Reply parsed = ParsePredictBody(http.body, context.options, &request);
      parsed.http_status != 200) {
    return parsed;
  }
  if (request.request_id.empty()) request.request_id = http.Header("x-request-id");
  if (request.request_id.empty()) request.request_id = NewRequestId();
  if (Status coerced = AddRequestInputs(*model, &request.rows); !coerced.ok()) {
    return ErrorReply(coerced);
  }

  PredictionEvent& event = *filled;
  event.request_id = request.request_id;
  event.time = WallClockNow();
  event.model = name;
  event.version = model->version();
  event.rows = request.rows.num_rows();

  // Features: one batched read of every pinned view for every row.
  Clock::time_point features_start = Clock::now();
  // The model's selection, built once per model and thread (not copied per request).
  thread_local std::weak_ptr<const ServingModel> selection_model;
  thread_local FeatureSelection selection;
  if (selection_model.lock() != model) {
    selection.references = model->feature_references();
    selection_model = model;
  }
  Result<std::shared_ptr<const LookupPlan>> plan =
      context.resolver->Plan(selection, request.rows.fields());
  if (!plan.ok()) {
    // A key column the request lacks (or of the wrong type) is the client's;
    // a view the catalog lost is the server's.
    if (plan.status().code() == StatusCode::kInvalidArgument) {
      return ErrorReply(400, "rows: " + plan.status().message());
    }
  }
  // Reused by the thread's requests (a reused OnlineFeatures reads as a
  // fresh one; the read may keep its buffers).
  thread_local features::OnlineFeatures read;
  std::string fallback_reason;
  bool fetched_ok = false;
  if (!plan.ok()) {
    fallback_reason = "features: " + plan.status().message();
  } else if (MicrosSince(start) >= request.deadline_ms * 1000) {
    fallback_reason = "features: the deadline of " + std::to_string(request.deadline_ms) +
                      " ms passed before they could be read";
  } else {
    Status fetched = features::ReadOnlineFeatures(context.store, request.rows, (*plan)->uses,
                                                  (*plan)->views, request.at, &read);
    fetched_ok = fetched.ok();
    if (!fetched.ok()) {
      fallback_reason = "features: online store: " + fetched.message();
    } else if (MicrosSince(start) > request.deadline_ms * 1000) {
      fallback_reason = "features: not read within the deadline of " +
                        std::to_string(request.deadline_ms) + " ms";
    }
  }
  if (!fetched_ok) read = features::OnlineFeatures();  // nothing of an earlier request
  event.features_us = MicrosSince(features_start);

  Clock::time_point model_start = Clock::now();
  bool have_features = fallback_reason.empty();
  size_t count = request.rows.num_rows();
  size_t width = model->inputs().size();
  Result<std::vector<double>> scores = std::vector<double>();
  std::string fallback_used;
  // The row path: each row's raw inputs straight from the request's columns
  // and the features read, scored with no table (ServingModel::ScoreRow). A
  // row it does not answer sends the whole request down the table path.
  thread_local std::vector<RowValue> raw;
  bool by_rows = false;
  if (have_features && model->row_path_status().ok()) {
    by_rows = GatherRows(*model, request.rows, read, &raw);
    if (by_rows) {
      scores->resize(count);
      for (size_t row = 0; row < count && by_rows; ++row) {
        by_rows = model->ScoreRow(std::span<const RowValue>(raw.data() + row * width, width),
                                  &(*scores)[row]);
      }
    }
  }
  Result<table::Table> inputs = table::Table();
  if (!by_rows) {
    inputs = ModelInputs(*model, request.rows, have_features ? &read : nullptr);
    if (!inputs.ok()) return ErrorReply(inputs.status());
    if (have_features) {
      scores = model->Score(*inputs, Scorer::kModel);
      if (!scores.ok()) {
        if (scores.status().code() == StatusCode::kInvalidArgument) {
          return ErrorReply(400, "rows: " + scores.status().message());
        }
        fallback_reason = "model: " + scores.status().message();
      }
    }
  }
  if (!fallback_reason.empty()) {
    switch (context.options.fallback) {
      case Fallback::kError:
        return ErrorReply(503, fallback_reason + " (fallback: error)");
      case Fallback::kBaseline:
        fallback_used = "baseline";
        scores = model->Score(*inputs, Scorer::kLinear);
        break;
      case Fallback::kDefaults:
        fallback_used = "defaults";
        inputs = ModelInputs(*model, request.rows, nullptr);
        if (!inputs.ok()) return ErrorReply(inputs.status());
        scores = model->Score(*inputs, Scorer::kModel);
        break;
    }
    if (!scores.ok()) {
      return ErrorReply(
          503, fallback_reason + "; the fallback failed too: " + scores.status().message());
    }
  }
  event.model_us = MicrosSince(model_start);

  // The answer.
  std::string out = "{\"model\":";
  AppendJsonString(name, &out);
  out += ",\"version\":" + std::to_string(model->version()) + ",\"request_id\":";
  AppendJsonString(request.request_id, &out);
  out += ",\"predictions\":[";
  for (size_t row = 0; row < count; ++row) {
    if (row > 0) out += ',';
    AppendDouble((*scores)[row], &out);
  }
  // Per row, the features that are not present (every other one is).
  out += "],\"features\":[";
  for (size_t row = 0; row < count; ++row) {
    std::string missing, stale;
    for (size_t index = 0; index < read.names.size(); ++index) {
      const char* status = FeatureStatusText(read.statuses[index][row]);
      if (status[0] == 'p') continue;
      std::string* list = status[0] == 's' ? &stale : &missing;
      if (!list->empty()) *list += ',';
      AppendJsonString(read.names[index], list);
      ++event.missing_features;
      event.missing_feature_names.push_back(read.names[index]);
    }
    out += row > 0 ? ",{\"missing\":[" : "{\"missing\":[";
    out += missing + "],\"stale\":[" + stale + "]}";
  }
  out += "],\"fallback\":";
  if (fallback_used.empty()) {
    out += "null";
  } else {
    out += "{\"used\":";
    AppendJsonString(fallback_used, &out);
    out += ",\"reason\":";
    AppendJsonString(fallback_reason, &out);
    out += '}';
  }
  event.total_us = MicrosSince(start);
  out += ",\"timing_us\":{\"features\":" + std::to_string(event.features_us) +
         ",\"model\":" + std::to_string(event.model_us) +
         ",\"total\":" + std::to_string(event.total_us) + "}}";

  event.fallback = fallback_used;
  event.predictions = *scores;
  if (context.on_prediction) {
    event.row_keys_json = std::move(request.row_json);
    event.input_names = model->input_names();
    event.inputs.assign(count, std::vector<double>(width, std::nan("")));
    if (by_rows) {
      for (size_t row = 0; row < count; ++row) {
        const RowValue* values = raw.data() + row * width;
        for (size_t col = 0; col < width; ++col) {
          if (values[col].valid && values[col].type != DataType::kString) {
            event.inputs[row][col] = values[col].number;
          }
        }
      }
    } else {
      for (size_t col = 0; col < width; ++col) {
        const table::Column& column = inputs->column(col);
        if (column.type() == DataType::kString) continue;
        for (size_t row = 0; row < count; ++row) {
          if (column.IsValid(row)) event.inputs[row][col] = column.NumericAt(row);
        }
      }
    }
  }
  return Reply(200, std::move(out));
}

const char* StatusLabel(int http_status, const PredictionEvent& event) {
  if (http_status == 200) return event.fallback.empty() ? "ok" : "fallback";
  if (http_status == 400 || http_status == 413) return "bad_request";
  if (http_status == 404) return "not_found";
  if (http_status == 503) return "unavailable";
  return "error";
}

// The series of answered ("ok") requests of one model version.
struct OkSeries {
  uint64_t metrics_id = 0;  // ServingMetrics::id; 0: empty
  std::string model;
  int64_t version = 0;
  Counter* predictions = nullptr;
  Histogram* total = nullptr;
  Histogram* features = nullptr;
  Histogram* model_stage = nullptr;
};

// PredictImpl with its metrics and the prediction log's event.
Reply Predict(const PredictContext& context, const HttpRequest& http) {
  std::optional<InFlight> in_flight;
  if (context.metrics != nullptr) in_flight.emplace(&context.metrics->in_flight);
  Clock::time_point start = Clock::now();
  PredictionEvent event;
  Reply reply = PredictImpl(context, http, &event);
  if (context.metrics != nullptr) {
    ServingMetrics& metrics = *context.metrics;
    bool ok = reply.http_status == 200 && event.fallback.empty() && !event.model.empty();
    // An answered request of the model and version this thread answered last
    // (the usual case) finds its series in the thread's cache.
    thread_local OkSeries cached;
    if (ok && cached.metrics_id == metrics.id && cached.version == event.version &&
        cached.model == event.model) {
      cached.predictions->Inc();
      cached.total->ObserveSince(start);
      cached.features->Observe(event.features_us / 1e6);
      cached.model_stage->Observe(event.model_us / 1e6);
    } else {
      // Unknown names are one label value, so clients cannot grow the series.
      std::string model =
          context.models->Has(http.captures.at(0)) ? http.captures.at(0) : "unknown";
      std::string version = event.model.empty() ? "" : std::to_string(event.version);
      Counter& predictions =
          metrics.predictions.With({model, version, StatusLabel(reply.http_status, event)});
      predictions.Inc();
      Histogram& total = metrics.latency.With({model, "total"});
      total.ObserveSince(start);
      if (reply.http_status == 200) {
        Histogram& features = metrics.latency.With({model, "features"});
        Histogram& model_stage = metrics.latency.With({model, "model"});
        features.Observe(event.features_us / 1e6);
        model_stage.Observe(event.model_us / 1e6);
        if (ok && model == event.model) {
          cached = {metrics.id, event.model, event.version, &predictions,
                    &total,     &features,   &model_stage};
        }
      }
    }
    if (reply.http_status == 200) {
      for (const std::string& feature : event.missing_feature_names) {
        metrics.feature_missing.With({event.model, feature}).Inc();
      }
    }
  }
  if (reply.http_status == 200 && context.on_prediction) context.on_prediction(std::move(event));
  return reply;
}

// --- Open Inference Protocol ------------------------------------------------

const char* OipType(DataType type) {
  switch (type) {
    case DataType::kString:
      return "BYTES";
    case DataType::kBool:
      return "BOOL";
    case DataType::kDouble:
      return "FP64";
    default:
      return "INT64";
  }
}

// The served model for /v2/models/{name}[/versions/{v}]: 404 for an unknown
// name or a version other than the one serving.
Result<std::shared_ptr<const ServingModel>> OipModel(const PredictContext& context,
                                                     const HttpRequest& http) {
  const std::string& name = http.captures.at(0);
  std::shared_ptr<const ServingModel> model = context.models->Get(name);
  if (model == nullptr) {
    if (context.models->Has(name)) {
      return Unavailable("model '" + name + "' has no loaded version yet");
    }
    return NotFound("unknown model '" + name + "'");
  }
  if (http.captures.size() > 1 && !http.captures[1].empty() &&
      http.captures[1] != std::to_string(model->version())) {
    return NotFound("model '" + name + "' version " + http.captures[1] +
                    " is not loaded (serving version " + std::to_string(model->version()) + ")");
  }
  return model;
}

Reply OipMetadata(const PredictContext& context, const HttpRequest& http) {
  Result<std::shared_ptr<const ServingModel>> model = OipModel(context, http);
  if (!model.ok()) return ErrorReply(model.status());
  Json inputs = Json::array();
  for (const ModelInput& input : (*model)->inputs()) {
    inputs.push_back({{"name", input.name}, {"datatype", OipType(input.type)}, {"shape", {-1}}});
  }
  Json out = {
      {"name", (*model)->name()},
      {"versions", {std::to_string((*model)->version())}},
      {"platform", "keel_xgboost"},
      {"inputs", inputs},
      {"outputs", Json::array({Json{{"name", "predict"}, {"datatype", "FP64"}, {"shape", {-1}}}})},
      {"parameters",
       {{"bundle_hash", (*model)->bundle_hash()}, {"model_columns", (*model)->model_columns()}}}};
  return Reply(200, out.dump());
}

Reply OipReady(const PredictContext& context, const HttpRequest& http) {
  Result<std::shared_ptr<const ServingModel>> model = OipModel(context, http);
  if (!model.ok() && model.status().code() == StatusCode::kNotFound) {
    return ErrorReply(model.status());
  }
  Json out = {{"name", http.captures.at(0)}, {"ready", model.ok()}};
  return Reply(model.ok() ? 200 : 503, out.dump());
}

// Flattens a tensor's data (flat or nested lists) into `out`.
Status Flatten(const Json& data, std::vector<const Json*>* out, const std::string& where,
               int depth = 0) {
  if (depth > 8) return InvalidArgument(where + ": data nested too deeply");
  for (const Json& item : data) {
    if (item.is_array()) {
      RETURN_IF_ERROR(Flatten(item, out, where, depth + 1));
    } else {
      out->push_back(&item);
    }
  }
  return Status::Ok();
}

Reply OipInfer(const PredictContext& context, const HttpRequest& http) {
  Result<std::shared_ptr<const ServingModel>> found = OipModel(context, http);
  if (!found.ok()) return ErrorReply(found.status());
  const ServingModel& model = **found;
  Json body;
  try {
    body = Json::parse(http.body.begin(), http.body.end());
  } catch (const Json::exception& error) {
    return ErrorReply(400, "body: not valid JSON: " + JsonErrorMessage(error.what()));
  }
  if (!body.is_object()) return ErrorReply(400, "body: expected a JSON object with \"inputs\"");
  for (const auto& [key, value] : body.items()) {
    if (key != "id" && key != "inputs" && key != "outputs" && key != "parameters") {
      return ErrorReply(400, key + ": unknown field (fields: id, inputs, outputs, parameters)");
    }
  }
  auto tensors = body.find("inputs");
  if (tensors == body.end() || !tensors->is_array() || tensors->empty()) {
    return ErrorReply(400, "inputs: expected a non-empty list of tensors");
  }
  std::string id;
  if (auto item = body.find("id"); item != body.end()) {
    if (!item->is_string()) return ErrorReply(400, "id: expected a string");
    id = item->get<std::string>();
  }
  Result<std::vector<double>> scores = std::vector<double>();
  size_t rows = 0;
  // One 2-D tensor of the model matrix, or one tensor per raw input.
  const Json& first = (*tensors)[0];
  bool matrix = tensors->size() == 1 && first.is_object() && first.contains("shape") &&
                first["shape"].is_array() && first["shape"].size() == 2;
  table::Table inputs;
  std::vector<float> values;
  for (size_t index = 0; index < tensors->size(); ++index) {
    const Json& tensor = (*tensors)[index];
    std::string where = "inputs[" + std::to_string(index) + "]";
    if (!tensor.is_object()) return ErrorReply(400, where + ": expected a tensor object");
    for (const char* field : {"name", "shape", "datatype", "data"}) {
      if (!tensor.contains(field)) return ErrorReply(400, where + "." + field + ": missing");
    }
    if (!tensor["name"].is_string() || !tensor["datatype"].is_string() ||
        !tensor["shape"].is_array() || !tensor["data"].is_array()) {
      return ErrorReply(400, where + ": name and datatype must be strings, shape and data lists");
    }
    std::string name = tensor["name"].get<std::string>();
    std::string datatype = tensor["datatype"].get<std::string>();
    size_t elements = 1;
    for (const Json& dim : tensor["shape"]) {
      if (!dim.is_number_integer() || dim.get<int64_t>() < 0 || dim.get<int64_t>() > 10000000) {
        return ErrorReply(400, where + ".shape: expected non-negative integers");
      }
      elements *= static_cast<size_t>(dim.get<int64_t>());
      if (elements > 10000000) return ErrorReply(413, where + ".shape: too many elements");
    }
    std::vector<const Json*> data;
    if (Status flat = Flatten(tensor["data"], &data, where + ".data"); !flat.ok()) {
      return ErrorReply(flat);
    }
    if (data.size() != elements) {
      return ErrorReply(400, where + ".data: " + std::to_string(data.size()) +
                                 " values, the shape says " + std::to_string(elements));
    }
    bool numeric = datatype == "FP32" || datatype == "FP64" || datatype == "INT32" ||
                   datatype == "INT64" || datatype == "INT16" || datatype == "INT8" ||
                   datatype == "UINT8" || datatype == "UINT16" || datatype == "UINT32" ||
                   datatype == "BOOL";
    if (!numeric && datatype != "BYTES") {
      return ErrorReply(400, where + ".datatype: '" + datatype + "' is not supported");
    }
    if (matrix) {
      size_t cols = model.model_columns().size();
      if (!numeric || tensor["shape"].size() != 2 || tensor["shape"][1].get<size_t>() != cols) {
        return ErrorReply(400, where + ": expected one tensor per input (" +
                                   std::to_string(model.inputs().size()) +
                                   " inputs, see GET /v2/models/" + model.name() +
                                   ") or a numeric [rows, " + std::to_string(cols) +
                                   "] tensor of the model's columns");
      }
      rows = tensor["shape"][0].get<size_t>();
      for (size_t item = 0; item < data.size(); ++item) {
        const Json* value = data[item];
        if (value->is_null()) {
          values.push_back(std::nanf(""));
        } else if (value->is_number() || value->is_boolean()) {
          values.push_back(value->is_boolean() ? float(value->get<bool>()) : value->get<float>());
        } else {
          return ErrorReply(400, where + ".data[" + std::to_string(item) + "]: expected a number");
        }
      }
      continue;
    }
    const ModelInput* input = nullptr;
    for (const ModelInput& candidate : model.inputs()) {
      if (candidate.name == name) input = &candidate;
    }
    if (input == nullptr) {
      return ErrorReply(400, where + ".name: '" + name + "' is not an input of model '" +
                                 model.name() + "' (GET /v2/models/" + model.name() + ")");
    }
    if (inputs.FindColumn(name) >= 0) return ErrorReply(400, where + ".name: '" + name + "' twice");
    if (index == 0) rows = data.size();
    if (data.size() != rows) {
      return ErrorReply(400, where + ": " + std::to_string(data.size()) +
                                 " values, inputs[0] has " + std::to_string(rows));
    }
    table::Column column(input->type, 0);
    for (size_t item = 0; item < data.size(); ++item) {
      const Json* value = data[item];
      std::string at = where + ".data[" + std::to_string(item) + "]";
      if (value->is_null()) {
        column.AppendNull();
      } else if (input->type == DataType::kString) {
        if (!value->is_string()) return ErrorReply(400, at + ": expected a string (BYTES)");
        column.AppendString(value->get_ref<const std::string&>());
      } else if (value->is_number() || value->is_boolean()) {
        double number = value->is_boolean() ? double(value->get<bool>()) : value->get<double>();
        if (input->type == DataType::kDouble) {
          column.AppendDouble(number);
        } else if (input->type == DataType::kBool) {
          column.AppendBool(number != 0);
        } else {
          column.AppendInt64(static_cast<int64_t>(number));
        }
      } else {
        return ErrorReply(400, at + ": expected a number");
      }
    }
    if (Status added = inputs.AddColumn(name, std::move(column)); !added.ok()) {
      return ErrorReply(added);
    }
  }
  if (matrix) {
    scores = model.ScoreMatrix(values, Scorer::kModel);
  } else {
    for (const ModelInput& input : model.inputs()) {
      if (inputs.FindColumn(input.name) < 0) {
        return ErrorReply(400, "inputs: no tensor named '" + input.name + "'");
      }
    }
    scores = model.Score(inputs, Scorer::kModel);
  }
  if (!scores.ok()) return ErrorReply(scores.status());
  std::string out = "{\"model_name\":";
  AppendJsonString(model.name(), &out);
  out += ",\"model_version\":\"" + std::to_string(model.version()) + "\"";
  if (!id.empty()) {
    out += ",\"id\":";
    AppendJsonString(id, &out);
  }
  out += ",\"outputs\":[{\"name\":\"predict\",\"datatype\":\"FP64\",\"shape\":[" +
         std::to_string(scores->size()) + "],\"data\":[";
  for (size_t row = 0; row < scores->size(); ++row) {
    if (row > 0) out += ',';
    AppendDouble((*scores)[row], &out);
  }
  out += "]}]}";
  return Reply(200, std::move(out));
}

}  // namespace

std::vector<Route> PredictRoutes(const PredictContext* context) {
  const PredictContext& c = *context;
  const std::string model = "/v2/models/([^/]+)(?:/versions/([^/]+))?";
  std::vector<Route> routes;
  routes.push_back({"POST", "/v1/models/([^/:]+):predict",
                    [&c](const HttpRequest& request) { return Predict(c, request); }});
  routes.push_back(
      {"GET", "/v2/health/live", [](const HttpRequest&) { return Reply(200, "{\"live\":true}"); }});
  routes.push_back({"GET", "/v2/health/ready", [&c](const HttpRequest&) {
                      bool ready = true;
                      for (const std::string& name : c.models->Names()) {
                        ready = ready && c.models->Get(name) != nullptr;
                      }
                      return Reply(ready ? 200 : 503,
                                   std::string("{\"ready\":") + (ready ? "true" : "false") + "}");
                    }});
  routes.push_back({"GET", "/v2", [](const HttpRequest&) {
                      return Reply(200,
                                   "{\"name\":\"keel\",\"version\":\"0.1.0\",\"extensions\":[]}");
                    }});
  routes.push_back({"GET", model, [&c](const HttpRequest& r) { return OipMetadata(c, r); }});
  routes.push_back(
      {"GET", model + "/ready", [&c](const HttpRequest& r) { return OipReady(c, r); }});
  routes.push_back(
      {"POST", model + "/infer", [&c](const HttpRequest& r) { return OipInfer(c, r); }});
  return routes;
}

}  // namespace keel::serve
