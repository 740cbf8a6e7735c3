#include "tools/trace_export.h"

#include <algorithm>

#include "tools/reg_names.h"

namespace rplayer::tools {

namespace {

using nlohmann::json;
using replay::Action;
using replay::ActionOp;

constexpr int kPid = 1;
// A burst's args list at most this many accesses: a trace viewer shows args in a side
// panel, and a long job's burst would otherwise copy the whole listing into the file.
constexpr size_t kBurstArgs = 32;

json complete(const char* cat, std::string name, int tid, uint64_t ts, uint64_t dur, json args) {
  return {{"name", std::move(name)},
          {"cat", cat},
          {"ph", "X"},
          {"pid", kPid},
          {"tid", tid},
          {"ts", ts},
          {"dur", dur},
          {"args", std::move(args)}};
}

json thread_name(int tid, const char* name) {
  return {{"name", "thread_name"},
          {"ph", "M"},
          {"pid", kPid},
          {"tid", tid},
          {"args", {{"name", name}}}};
}

json thread_order(int tid) {
  return {{"name", "thread_sort_index"},
          {"ph", "M"},
          {"pid", kPid},
          {"tid", tid},
          {"args", {{"sort_index", tid}}}};
}

// Batches a dispatch runs, from its CFG values (as the modeled CSD counts them).
uint64_t dispatch_batches(const Dispatch& d) {
  const uint64_t wgs = uint64_t(d.cfg[0] >> 16) * (d.cfg[1] >> 16) * (d.cfg[2] >> 16);
  const uint32_t wg_size = (d.cfg[3] & 0xff) ? (d.cfg[3] & 0xff) : 256;
  return wgs * ((wg_size + 15) / 16);
}

}  // namespace

json chrome_trace(const Inspection& ins, const std::string& title) {
  const replay::Recording& rec = ins.rec;
  json events = json::array();
  events.push_back({{"name", "process_name"},
                    {"ph", "M"},
                    {"pid", kPid},
                    {"tid", 0},
                    {"args", {{"name", "rplayer " + title}}}});
  const std::pair<int, const char*> tracks[] = {{kTrackJobs, "jobs"},
                                                {kTrackRegisters, "register bursts"},
                                                {kTrackPolls, "polls"},
                                                {kTrackInterrupts, "interrupts"},
                                                {kTrackMemory, "memory syncs"}};
  for (const auto& [tid, name] : tracks) {
    events.push_back(thread_name(tid, name));
    events.push_back(thread_order(tid));
  }

  // Per action: which job and dispatch it belongs to.
  std::vector<const Dispatch*> dispatch_at(rec.actions.size(), nullptr);
  for (const Job& j : ins.jobs)
    for (const Dispatch& d : j.dispatches)
      if (d.action < dispatch_at.size()) dispatch_at[d.action] = &d;
  const int qpus = ins.sku ? std::max(ins.sku->num_qpus(), 1) : 1;

  uint64_t t = 0;
  uint64_t pending_batches = 0;  // dispatched since the last interrupt wait
  size_t next_job = 0;
  uint64_t job_start = 0;
  // The open register burst.
  size_t burst_first = 0, burst_n = 0, burst_w = 0, burst_r = 0;
  uint64_t burst_start = 0;
  json burst_list = json::array();
  auto close_burst = [&](size_t last) {
    if (burst_n == 0) return;
    json args = {{"first_action", burst_first},
                 {"last_action", last},
                 {"writes", burst_w},
                 {"reads", burst_r},
                 {"accesses", burst_list}};
    if (burst_n > kBurstArgs) args["accesses_omitted"] = burst_n - kBurstArgs;
    std::string name = std::to_string(burst_n) + " register access" + (burst_n > 1 ? "es" : "");
    events.push_back(complete("registers", std::move(name), kTrackRegisters, burst_start,
                              t - burst_start, std::move(args)));
    burst_n = burst_w = burst_r = 0;
    burst_list = json::array();
  };

  for (size_t i = 0; i < rec.actions.size(); ++i) {
    const Action& a = rec.actions[i];
    if (next_job < ins.jobs.size() && i == ins.jobs[next_job].first_action) job_start = t;
    const bool reg = a.op == ActionOp::Write || a.op == ActionOp::Read;
    if (!reg) close_burst(i - 1);
    switch (a.op) {
      case ActionOp::Write:
      case ActionOp::Read: {
        if (burst_n == 0) burst_first = i, burst_start = t;
        ++burst_n;
        ++(a.op == ActionOp::Write ? burst_w : burst_r);
        if (burst_list.size() < kBurstArgs) burst_list.push_back(format_action(rec, a, ins.sku));
        if (const Dispatch* d = dispatch_at[i]) {
          pending_batches += dispatch_batches(*d);
          json args = {{"action", i}, {"shader_va", d->shader_va}};
          if (d->shader >= 0) args["shader"] = shader_name(d->shader);
          events.push_back({{"name", "dispatch" + (d->shader >= 0 ? " " + shader_name(d->shader)
                                                                  : std::string())},
                            {"cat", "dispatch"},
                            {"ph", "i"},
                            {"s", "t"},
                            {"pid", kPid},
                            {"tid", kTrackJobs},
                            {"ts", t},
                            {"args", std::move(args)}});
        }
        t += kAccessUs;
        break;
      }
      case ActionOp::Poll: {
        const uint64_t dur = std::min<uint64_t>(kPollUs, std::max<uint32_t>(a.timeout_us, 1));
        events.push_back(complete("poll", "poll " + register_label(a.block, a.offset, ins.sku),
                                  kTrackPolls, t, dur,
                                  {{"action", i},
                                   {"text", format_action(rec, a, ins.sku)},
                                   {"timeout_us", a.timeout_us}}));
        t += dur;
        break;
      }
      case ActionOp::WaitIrq: {
        const uint64_t rounds = (pending_batches + uint64_t(qpus) - 1) / uint64_t(qpus);
        const uint64_t dur =
            std::min<uint64_t>(kIrqBaseUs + rounds * kBatchUs, std::max<uint32_t>(a.timeout_us, 1));
        events.push_back(complete("irq", "irq line " + std::to_string(a.line), kTrackInterrupts, t,
                                  dur,
                                  {{"action", i},
                                   {"line", a.line},
                                   {"timeout_us", a.timeout_us},
                                   {"modeled_batches", pending_batches}}));
        pending_batches = 0;
        t += dur;
        break;
      }
      case ActionOp::LoadMemory: {
        const uint64_t dur = std::max<uint64_t>(uint64_t(a.count) * kPageUs, 1);
        events.push_back(complete("memory", "load " + std::to_string(a.count) + " pages",
                                  kTrackMemory, t, dur,
                                  {{"action", i},
                                   {"first", a.first},
                                   {"count", a.count},
                                   {"text", format_action(rec, a, ins.sku)}}));
        t += dur;
        break;
      }
      case ActionOp::JobBoundary:
        break;
    }
    // A job's event ends with its last action (the JobBoundary, or the recording's end).
    if (next_job < ins.jobs.size() && i == ins.jobs[next_job].last_action) {
      close_burst(i);
      const Job& job = ins.jobs[next_job];
      json shaders = json::array();
      for (const Dispatch& d : job.dispatches)
        if (d.shader >= 0) shaders.push_back(shader_name(d.shader));
      json args = {{"index", next_job},
                   {"first_action", job.first_action},
                   {"last_action", job.last_action},
                   {"dispatches", job.dispatches.size()},
                   {"shaders", std::move(shaders)}};
      if (job.seqno >= 0) args["seqno"] = job.seqno;
      const std::string name =
          "job " + std::to_string(next_job) +
          (job.seqno >= 0 ? " (seqno " + std::to_string(job.seqno) + ")" : " (unterminated)");
      events.push_back(complete("job", name, kTrackJobs, job_start,
                                std::max<uint64_t>(t - job_start, 1), std::move(args)));
      ++next_job;
    }
  }
  if (!rec.actions.empty()) close_burst(rec.actions.size() - 1);

  json other = {
      {"sku", rec.sku_name},
      {"timeline", "modeled, not measured: " + std::to_string(kAccessUs) +
                       " us per register access, " + std::to_string(kPollUs) +
                       " us per poll, interrupt wait " + std::to_string(kIrqBaseUs) + " us + " +
                       std::to_string(kBatchUs) + " us per round of batches over the QPUs, " +
                       std::to_string(kPageUs) + " us per page loaded"},
  };
  return {{"traceEvents", std::move(events)},
          {"displayTimeUnit", "ms"},
          {"otherData", std::move(other)}};
}

}  // namespace rplayer::tools
