#include "tee/replay_client.h"

#include <cstring>

namespace rplayer::tee {

const char* teec_result_name(TEEC_Result r) {
  switch (r) {
    case TEEC_SUCCESS: return "TEEC_SUCCESS";
    case TEEC_ERROR_GENERIC: return "TEEC_ERROR_GENERIC";
    case TEEC_ERROR_ACCESS_DENIED: return "TEEC_ERROR_ACCESS_DENIED";
    case TEEC_ERROR_CANCEL: return "TEEC_ERROR_CANCEL";
    case TEEC_ERROR_BAD_FORMAT: return "TEEC_ERROR_BAD_FORMAT";
    case TEEC_ERROR_BAD_PARAMETERS: return "TEEC_ERROR_BAD_PARAMETERS";
    case TEEC_ERROR_BAD_STATE: return "TEEC_ERROR_BAD_STATE";
    case TEEC_ERROR_ITEM_NOT_FOUND: return "TEEC_ERROR_ITEM_NOT_FOUND";
    case TEEC_ERROR_NOT_IMPLEMENTED: return "TEEC_ERROR_NOT_IMPLEMENTED";
    case TEEC_ERROR_NOT_SUPPORTED: return "TEEC_ERROR_NOT_SUPPORTED";
    case TEEC_ERROR_NO_DATA: return "TEEC_ERROR_NO_DATA";
    case TEEC_ERROR_OUT_OF_MEMORY: return "TEEC_ERROR_OUT_OF_MEMORY";
    case TEEC_ERROR_BUSY: return "TEEC_ERROR_BUSY";
    case TEEC_ERROR_COMMUNICATION: return "TEEC_ERROR_COMMUNICATION";
    case TEEC_ERROR_SECURITY: return "TEEC_ERROR_SECURITY";
    case TEEC_ERROR_SHORT_BUFFER: return "TEEC_ERROR_SHORT_BUFFER";
    case TEEC_ERROR_TARGET_DEAD: return "TEEC_ERROR_TARGET_DEAD";
    case 0xFFFF0004u: return "TEE_ERROR_EXCESS_DATA";
    case 0xFFFF3071u: return "TEE_ERROR_MAC_INVALID";
    case 0xFFFF3072u: return "TEE_ERROR_SIGNATURE_INVALID";
    default: return "TEEC error";
  }
}

std::string TeeStatus::message() const {
  static const char* const kOrigins[] = {"?", "the client API", "the TEE transport", "the TEE",
                                         "the trusted app"};
  std::string m = teec_result_name(result);
  m += " from ";
  m += kOrigins[origin < 5 ? origin : 0];
  if (!detail.empty()) m += ": " + detail;
  return m;
}

TeeStatus open_ta_session(const std::string& tee, const TEEC_UUID& uuid, TEEC_Context* ctx,
                          TEEC_Session* session, bool* have_ctx, bool* open) {
  close_ta_session(ctx, session, have_ctx, open);
  TeeStatus st;
  st.origin = TEEC_ORIGIN_API;
  st.result = TEEC_InitializeContext(tee == "inproc" ? nullptr : tee.c_str(), ctx);
  if (!st.ok()) return st;
  *have_ctx = true;
  TEEC_UUID u = uuid;
  st.result = TEEC_OpenSession(ctx, session, &u, TEEC_LOGIN_PUBLIC, nullptr, nullptr, &st.origin);
  *open = st.ok();
  if (!*open) close_ta_session(ctx, session, have_ctx, open);
  return st;
}

void close_ta_session(TEEC_Context* ctx, TEEC_Session* session, bool* have_ctx, bool* open) {
  if (*open) TEEC_CloseSession(session);
  if (*have_ctx) TEEC_FinalizeContext(ctx);
  *open = *have_ctx = false;
}

TeeStatus ReplayClient::open(const std::string& tee) {
  TEEC_UUID uuid{ReplayTaUuid::time_low, ReplayTaUuid::time_mid, ReplayTaUuid::time_hi_and_version,
                 {}};
  std::memcpy(uuid.clockSeqAndNode, ReplayTaUuid::clock_seq_and_node, 8);
  return open_ta_session(tee, uuid, &ctx_, &session_, &have_ctx_, &open_);
}

void ReplayClient::close() { close_ta_session(&ctx_, &session_, &have_ctx_, &open_); }

TeeStatus ReplayClient::load(const std::vector<uint8_t>& recording, uint32_t* handle,
                             uint32_t* classes, const std::vector<uint8_t>& model_file) {
  TeeStatus st;
  if (!open_) return st.result = TEEC_ERROR_BAD_STATE, st.origin = TEEC_ORIGIN_API, st;
  char why[256] = {};
  TEEC_Operation op{};
  op.paramTypes =
      TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_MEMREF_TEMP_OUTPUT,
                       model_file.empty() ? TEEC_NONE : TEEC_MEMREF_TEMP_INPUT);
  op.params[0].tmpref = {const_cast<uint8_t*>(recording.data()), recording.size()};
  op.params[2].tmpref = {why, sizeof why};
  if (!model_file.empty())
    op.params[3].tmpref = {const_cast<uint8_t*>(model_file.data()), model_file.size()};
  st.result = TEEC_InvokeCommand(&session_, kReplayTaLoadRecording, &op, &st.origin);
  if (!st.ok()) {
    why[sizeof why - 1] = 0;
    st.detail = why;
    return st;
  }
  *handle = op.params[1].value.a;
  if (classes) *classes = op.params[1].value.b;
  return st;
}

TeeStatus ReplayClient::run(uint32_t handle, const std::vector<uint8_t>& input, uint32_t k,
                            ReplayTaInput kind, void* out, size_t out_bytes, RunStats* stats,
                            size_t* written) {
  TeeStatus st;
  if (!open_) return st.result = TEEC_ERROR_BAD_STATE, st.origin = TEEC_ORIGIN_API, st;
  RunStats local;
  TEEC_Operation op{};
  op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                   TEEC_MEMREF_TEMP_OUTPUT, TEEC_MEMREF_TEMP_OUTPUT);
  op.params[0].value = {handle, k | uint32_t(kind) << 16};
  op.params[1].tmpref = {const_cast<uint8_t*>(input.data()), input.size()};
  op.params[2].tmpref = {out, out_bytes};
  op.params[3].tmpref = {&local, sizeof local};
  st.result = TEEC_InvokeCommand(&session_, kReplayTaRun, &op, &st.origin);
  *written = op.params[2].tmpref.size;
  if (st.ok() && stats) *stats = local;
  if (!st.ok() && st.origin == TEEC_ORIGIN_TRUSTED_APP) {
    local.error[sizeof local.error - 1] = 0;
    st.detail = local.error;  // the TA's reason, if it gave one
  }
  return st;
}

TeeStatus ReplayClient::classify(uint32_t handle, const std::vector<uint8_t>& input, uint32_t k,
                                 std::vector<TopEntry>* top, RunStats* stats, ReplayTaInput kind) {
  top->assign(k, TopEntry{});
  size_t written = 0;
  TeeStatus st = run(handle, input, k, kind, top->data(), top->size() * sizeof(TopEntry), stats,
                     &written);
  top->resize(st.ok() ? written / sizeof(TopEntry) : 0);
  return st;
}

TeeStatus ReplayClient::scores(uint32_t handle, const std::vector<uint8_t>& input,
                               ReplayTaInput kind, std::vector<float>* out, RunStats* stats) {
  size_t written = 0;
  TeeStatus st = run(handle, input, 0, kind, out->data(), out->size() * 4, stats, &written);
  if (st.result == TEEC_ERROR_SHORT_BUFFER) {  // learn the size, then ask again
    out->assign(written / 4, 0.f);
    st = run(handle, input, 0, kind, out->data(), out->size() * 4, stats, &written);
  }
  out->resize(st.ok() ? written / 4 : 0);
  return st;
}

TeeStatus ReplayClient::unload(uint32_t handle) {
  TeeStatus st;
  if (!open_) return st.result = TEEC_ERROR_BAD_STATE, st.origin = TEEC_ORIGIN_API, st;
  TEEC_Operation op{};
  op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
  op.params[0].value = {handle, 0};
  st.result = TEEC_InvokeCommand(&session_, kReplayTaUnload, &op, &st.origin);
  return st;
}

}  // namespace rplayer::tee
