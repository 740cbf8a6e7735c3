#include "tee/gpu_shim_client.h"

#include <cstring>

namespace rplayer::tee {

namespace {
constexpr size_t kMaxReply = 1u << 20;  // a sealed reply: results and refusals, never pages
}

TeeStatus GpuShimClient::open(const std::string& tee) {
  TEEC_UUID uuid{
      GpuShimTaUuid::time_low, GpuShimTaUuid::time_mid, GpuShimTaUuid::time_hi_and_version, {}};
  std::memcpy(uuid.clockSeqAndNode, GpuShimTaUuid::clock_seq_and_node, 8);
  return open_ta_session(tee, uuid, &ctx_, &session_, &have_ctx_, &open_);
}

void GpuShimClient::close() { close_ta_session(&ctx_, &session_, &have_ctx_, &open_); }

TeeStatus GpuShimClient::connect(const std::vector<uint8_t>& hello,
                                 const std::vector<uint8_t>& cloud_key, std::vector<uint8_t>* out) {
  TeeStatus st;
  if (!open_) return st.result = TEEC_ERROR_BAD_STATE, st.origin = TEEC_ORIGIN_API, st;
  char why[512] = {};
  out->resize(64 * 1024);
  TEEC_Operation op{};
  op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_INPUT,
                                   TEEC_MEMREF_TEMP_OUTPUT, TEEC_MEMREF_TEMP_OUTPUT);
  op.params[0].tmpref = {const_cast<uint8_t*>(hello.data()), hello.size()};
  op.params[1].tmpref = {const_cast<uint8_t*>(cloud_key.data()), cloud_key.size()};
  op.params[2].tmpref = {out->data(), out->size()};
  op.params[3].tmpref = {why, sizeof why};
  st.result = TEEC_InvokeCommand(&session_, kGpuShimConnect, &op, &st.origin);
  if (!st.ok()) {
    why[sizeof why - 1] = 0;
    st.detail = why;
    out->clear();
    return st;
  }
  out->resize(op.params[2].tmpref.size);
  return st;
}

TeeStatus GpuShimClient::exchange(const std::vector<uint8_t>& sealed, std::vector<uint8_t>* reply,
                                  bool* ended) {
  TeeStatus st;
  *ended = false;
  if (!open_) return st.result = TEEC_ERROR_BAD_STATE, st.origin = TEEC_ORIGIN_API, st;
  if (buf_.size() < kMaxReply) buf_.resize(kMaxReply);
  static const uint8_t none = 0;
  bool first = true;
  // Each call is one bounded slice of the TA's work, and its waits are bounded: a TA still
  // pending after this many slices is broken.
  for (int slice = 0; slice < 10000; ++slice) {
    char why[512] = {};
    TEEC_Operation op{};
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT,
                                     TEEC_VALUE_OUTPUT, TEEC_MEMREF_TEMP_OUTPUT);
    if (first)
      op.params[0].tmpref = {const_cast<uint8_t*>(sealed.data()), sealed.size()};
    else
      op.params[0].tmpref = {const_cast<uint8_t*>(&none), 0};
    op.params[1].tmpref = {buf_.data(), buf_.size()};
    op.params[3].tmpref = {why, sizeof why};
    st.result = TEEC_InvokeCommand(&session_, kGpuShimExchange, &op, &st.origin);
    first = false;
    why[sizeof why - 1] = 0;
    st.detail = why;
    if (!st.ok()) {
      *ended = true;
      return st;
    }
    if (op.params[2].value.a == 1) continue;  // a wait goes on in the TA
    reply->assign(buf_.begin(), buf_.begin() + op.params[1].tmpref.size);
    *ended = op.params[2].value.b == 1;
    return st;
  }
  *ended = true;
  st.result = TEEC_ERROR_GENERIC;
  st.origin = TEEC_ORIGIN_API;
  st.detail = "the TA never finished the frame";
  return st;
}

TeeStatus GpuShimClient::end_session() {
  TeeStatus st;
  if (!open_) return st.result = TEEC_ERROR_BAD_STATE, st.origin = TEEC_ORIGIN_API, st;
  TEEC_Operation op{};
  op.paramTypes = TEEC_PARAM_TYPES(TEEC_NONE, TEEC_NONE, TEEC_NONE, TEEC_NONE);
  st.result = TEEC_InvokeCommand(&session_, kGpuShimClose, &op, &st.origin);
  return st;
}

}  // namespace rplayer::tee
