#include "runtime/command_buffer.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace rplayer::runtime {

using jit::Type;

Arg Arg::buffer(const Buffer& b, uint32_t offset) {
  if (!b.valid()) throw Error("Arg::buffer of an empty Buffer");
  if (offset > b.size())
    throw Error("Arg::buffer offset " + std::to_string(offset) + " past the end of '" + b.label() +
                "'");
  return {true, b.handle(), b.gpu_va() + offset, Type::U32};
}

Arg Arg::f32(float v) { return {false, 0, std::bit_cast<uint32_t>(v), Type::F32}; }

CommandBuffer::CommandBuffer(Device& dev, std::string label)
    : dev_(dev), label_(std::move(label)) {}

CommandBuffer::~CommandBuffer() = default;  // the uniform buffer's free waits for its jobs

void CommandBuffer::dispatch(const jit::Kernel& kernel, const Grid& grid,
                             const std::vector<Arg>& args, const jit::Specialization& spec) {
  if (sealed_)
    throw Error("command buffer '" + label_ + "': dispatch after submit (record a new one)");
  dispatch(dev_.shaders().get(kernel, spec), grid, args);
}

void CommandBuffer::dispatch(const CachedKernel& kernel, const Grid& grid,
                             const std::vector<Arg>& args) {
  const jit::CompiledKernel& k = kernel.compiled;
  auto fail = [&](const std::string& msg) {
    throw Error("command buffer '" + label_ + "', dispatch #" + std::to_string(dispatches_.size()) +
                " of kernel '" + k.name + "': " + msg);
  };
  if (sealed_) fail("dispatch after submit (record a new command buffer)");
  if (args.size() != k.params.size())
    fail(std::to_string(args.size()) + " arguments for " + std::to_string(k.params.size()) +
         " parameters");
  for (size_t i = 0; i < args.size(); ++i) {
    const jit::ParamDecl& p = k.params[i];
    const bool want_buffer = p.kind == jit::ParamKind::Buffer;
    if (args[i].is_buffer != want_buffer)
      fail("parameter '" + p.name + "' takes a " + (want_buffer ? "buffer" : "scalar"));
    if (!want_buffer && args[i].type != p.type &&
        !(p.type == Type::Bool && args[i].type == Type::U32))
      fail("parameter '" + p.name + "' is " + jit::type_name(p.type) + ", given " +
           jit::type_name(args[i].type));
  }
  Dispatch d;
  d.kernel = &kernel;
  d.grid.x = grid.x_in_invocations ? k.workgroups_for(grid.x) : uint32_t(grid.x);
  if (!grid.x_in_invocations && grid.x > 0xffff) fail("grid x out of range");
  d.grid.y = grid.y;
  d.grid.z = grid.z;
  k.csd_cfg(d.grid, 0, 0);  // validates the grid now rather than at submit
  for (uint32_t p : k.uniform_params) d.uniforms.push_back(args[p].value);
  for (const Arg& a : args)
    if (a.is_buffer && std::find(d.bos.begin(), d.bos.end(), a.handle) == d.bos.end())
      d.bos.push_back(a.handle);
  dispatches_.push_back(std::move(d));
}

void CommandBuffer::barrier() {
  // Jobs run one at a time in submission order: the ordering is already there.
  ++barriers_;
}

void CommandBuffer::build_uniforms() {
  uint32_t words = 0;
  for (Dispatch& d : dispatches_) {
    d.uniforms_offset = words * 4;
    words += uint32_t(d.uniforms.size());
  }
  // A kernel without parameters still gets a valid CFG6: one zero word.
  uniforms_ = dev_.create_buffer(std::max<uint32_t>(words, 1) * 4, driver::BoUsage::Uniforms,
                                 label_ + ".uniforms");
  for (Dispatch& d : dispatches_) {
    uniforms_.upload(d.uniforms.data(), d.uniforms.size() * 4, d.uniforms_offset);
    d.cfg = d.kernel->compiled.csd_cfg(d.grid, d.kernel->code.gpu_va(),
                                       uniforms_.gpu_va() + d.uniforms_offset);
  }
}

void CommandBuffer::seal() {
  if (sealed_) return;
  if (!dispatches_.empty()) build_uniforms();
  sealed_ = true;
}

void CommandBuffer::submit() {
  seal();
  driver::V3dDriver& drv = dev_.driver();
  last_submit_.clear();
  for (size_t i = 0; i < dispatches_.size(); ++i) {
    const Dispatch& d = dispatches_[i];
    driver::SubmitCsd s;
    std::copy(d.cfg.begin(), d.cfg.end(), s.cfg);
    s.bo_handles = d.bos;
    s.bo_handles.push_back(d.kernel->code.handle());
    s.bo_handles.push_back(uniforms_.handle());
    if (drv.submit_csd(s))
      dev_.fail("command buffer '" + label_ + "': submit of dispatch #" + std::to_string(i) +
                " (kernel '" + d.kernel->compiled.name + "')");
    pending_.push_back({s.seqno, i});
    last_submit_.push_back({s.seqno, i});
    last_seqno_ = s.seqno;
  }
}

std::string CommandBuffer::describe(size_t i, uint64_t seqno) const {
  return "command buffer '" + label_ + "': dispatch #" + std::to_string(i) + " (kernel '" +
         dispatches_[i].kernel->compiled.name + "', job " + std::to_string(seqno) + ")";
}

void CommandBuffer::wait(std::chrono::milliseconds timeout) {
  driver::V3dDriver& drv = dev_.driver();
  const std::vector<std::pair<uint64_t, size_t>> pending = std::move(pending_);
  pending_.clear();
  std::string error;
  for (const auto& [seqno, i] : pending) {
    const int rc = drv.wait_seqno(seqno, timeout);
    if (rc && error.empty())
      error = describe(i, seqno) + (rc == -ETIMEDOUT ? " timed out or hung: " : " failed: ") +
              drv.last_error();
  }
  if (!error.empty()) throw Error(error);
  check_faults();
}

void CommandBuffer::check_faults() const {
  // MMU faults do not fail a job (the access is aborted and the job goes on), but its
  // results are wrong: report them as errors too.
  for (const driver::JobFault& f : dev_.driver().faults()) {
    for (const auto& [seqno, i] : last_submit_) {
      if (f.seqno != seqno) continue;
      char buf[96];
      if (f.hang) {
        std::snprintf(buf, sizeof buf, "GPU hang");
      } else if (f.qpu_error) {
        std::snprintf(buf, sizeof buf, "QPU error (status 0x%x)", f.hub_status);
      } else {
        std::snprintf(buf, sizeof buf, "GPU MMU fault at VA 0x%08x (status 0x%x)", f.va,
                      f.hub_status);
      }
      throw Error(describe(i, seqno) + ": " + buf);
    }
  }
}

}  // namespace rplayer::runtime
