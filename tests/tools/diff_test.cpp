// rplayer diff's engine: what differs between two recordings, and where.
#include <gtest/gtest.h>

#include "tests/replay/workload.h"
#include "tools/recording_diff.h"

namespace rplayer::tools {
namespace {

using replay::ActionOp;
using replay::test::ramp;
using replay::test::record_workload;

TEST(RecordingDiff, SameWorkloadTwiceIsIdentical) {
  const replay::Recording a = record_workload("v3d-7.1", ramp(1.f));
  const replay::Recording b = record_workload("v3d-7.1", ramp(1.f));
  DiffOptions o;
  o.ignore_wait_bounds = true;  // interrupt-wait bounds follow the recording machine's timing
  const RecordingDiff d = diff_recordings(a, b, o);
  EXPECT_TRUE(d.identical()) << d.text();
  EXPECT_EQ(d.text(), "identical\n");
  EXPECT_EQ(d.json()["identical"], true);
}

TEST(RecordingDiff, NamesTheActionTheRegionAndThePage) {
  const replay::Recording a = record_workload("v3d-7.1", ramp(1.f));
  replay::Recording b = a;
  size_t w = 0;
  for (size_t i = 0; i < b.actions.size(); ++i)
    if (b.actions[i].op == ActionOp::Write) w = i;
  b.actions[w].value ^= 0x10;
  b.regions[1].label = "renamed";
  for (replay::PageBlob& blob : b.blobs) blob.data[5] ^= 1;  // every image differs
  const RecordingDiff d = diff_recordings(a, b);
  EXPECT_FALSE(d.identical());
  const nlohmann::json j = d.json();
  EXPECT_EQ(j["sections"]["actions"]["count"], 1);
  EXPECT_NE(j["sections"]["actions"]["listed"][0].get<std::string>().find("action[" +
                                                                          std::to_string(w) + "]"),
            std::string::npos);
  EXPECT_EQ(j["sections"]["regions"]["count"], 1);
  EXPECT_EQ(j["sections"]["memory"]["count"], b.blobs.size());
  EXPECT_NE(d.text().find("image vs another image"), std::string::npos) << d.text();
  EXPECT_EQ(j["sections"]["bindings"]["count"], 0);
}

TEST(RecordingDiff, WaitBoundsAndWeightsAreReportedUnlessIgnored) {
  const replay::Recording a = record_workload("v3d-7.1", ramp(1.f));
  replay::Recording b = a;
  for (replay::Action& x : b.actions)
    if (x.op == ActionOp::WaitIrq) x.timeout_us += 1;
  b.weight_bindings[0].digest[0] ^= 1;
  EXPECT_GT(diff_recordings(a, b).json()["sections"]["actions"]["count"], 0);
  DiffOptions o;
  o.ignore_wait_bounds = true;
  const RecordingDiff d = diff_recordings(a, b, o);
  EXPECT_EQ(d.json()["sections"]["actions"]["count"], 0);
  EXPECT_EQ(d.json()["sections"]["weights"]["count"], 1) << d.text();
  o.max_listed = 0;
  EXPECT_NE(diff_recordings(a, b, o).text().find("... and 1 more"), std::string::npos);
}

}  // namespace
}  // namespace rplayer::tools
