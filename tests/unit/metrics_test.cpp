// The metrics registry and its exposition (agent/metrics.hpp), checked by the strict
// parser of tests/support/exposition_parser.hpp, and the parser's own strictness.
#include "agent/ops/metrics.hpp"
#include "agent/ops/rejections.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

#include "support/exposition_parser.hpp"

namespace yuxi::config::agent {
namespace {

using namespace std::chrono_literals;
using test::Exposition;
using test::ExpositionError;
using test::parse_exposition;

// Every family deploy/monitoring and docs/operations.md use, with its type.
const std::map<std::string, std::string> kFamilies = {
    {"yuxi_config_up", "gauge"},
    {"yuxi_config_ready", "gauge"},
    {"yuxi_config_revision", "gauge"},
    {"yuxi_config_entries", "gauge"},
    {"yuxi_config_segment_bytes", "gauge"},
    {"yuxi_config_segment_fill_ratio", "gauge"},
    {"yuxi_config_heartbeat_timestamp_seconds", "gauge"},
    {"yuxi_config_updates_applied_total", "counter"},
    {"yuxi_config_apply_duration_seconds", "histogram"},
    {"yuxi_config_propagation_delay_seconds", "histogram"},
    {"yuxi_config_source_up", "gauge"},
    {"yuxi_config_source_state", "gauge"},
    {"yuxi_config_reconnects_total", "counter"},
    {"yuxi_config_resyncs_total", "counter"},
    {"yuxi_config_errors_total", "counter"},
    {"yuxi_config_relay_leader", "gauge"},
    {"yuxi_config_insecure", "gauge"},
    {"yuxi_config_snapshot_age_seconds", "gauge"},
    {"yuxi_config_l2_snapshot_loads_total", "counter"},
    {"yuxi_config_rejected_documents_total", "counter"},
    {"yuxi_config_rejected_values_total", "counter"},
    {"yuxi_config_rejected_keys", "gauge"},
    {"yuxi_config_build_info", "gauge"},
    {"yuxi_config_history_rewound_total", "counter"},
    {"yuxi_config_serving_server_info", "gauge"},
};

ModeStatus database_status() {
    ModeStatus s;
    s.ready = true;
    s.source = "postgres";
    s.source_up = true;
    s.published = true;
    s.revision = 4242;
    s.entries = 1500;
    s.segment_bytes = 16 << 20;
    s.fill_ratio = 0.25;
    s.state = SourceState::ok;
    s.reconnects = 3;
    s.resyncs = 1;
    s.errors = {{"connect", 2}, {"timeout", 0}, {"refused", 1}};
    return s;
}

TEST(Histogram, CountsEachValueInTheFirstBucketThatHoldsIt) {
    Histogram h(kLatencyBuckets);
    h.observe(0.00005);  // on a bound: that bucket (le is "<=")
    h.observe(0.0003);
    h.observe(11);  // above the last bound: +Inf only
    EXPECT_EQ(h.count(), 3u);
    EXPECT_DOUBLE_EQ(h.sum(), 0.00005 + 0.0003 + 11);
    ASSERT_EQ(h.counts().size(), kLatencyBuckets.size() + 1);
    EXPECT_EQ(h.counts()[0], 1u);
    EXPECT_EQ(h.counts()[3], 1u);  // 0.0005
    EXPECT_EQ(h.counts().back(), 1u);
}

TEST(Exposition, FormatsValuesAsPrometheusReadsThem) {
    EXPECT_EQ(format_value(1), "1");
    EXPECT_EQ(format_value(4242), "4242");
    EXPECT_EQ(format_value(0.5), "0.5");
    EXPECT_EQ(format_value(HUGE_VAL), "+Inf");
    EXPECT_EQ(format_value(-HUGE_VAL), "-Inf");
    EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(Exposition, EscapesLabelValuesAndHelp) {
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    EXPECT_EQ(escape_help("a\\b\"c\nd"), "a\\\\b\"c\\nd");
}

TEST(Metrics, RendersEveryFamilyStrictlyFromTheFirstScrape) {
    const Metrics m("1.2.3");
    const Exposition e = parse_exposition(m.render(ModeStatus{}));
    for (const auto& [name, type] : kFamilies) {
        const test::Family* f = e.family(name);
        ASSERT_NE(f, nullptr) << name;
        EXPECT_EQ(f->type, type) << name;
        EXPECT_FALSE(f->help.empty()) << name;
    }
    EXPECT_EQ(e.families.size(), kFamilies.size());
    EXPECT_EQ(e.value("yuxi_config_up"), 1);
    EXPECT_EQ(e.value("yuxi_config_ready"), 0);
    EXPECT_EQ(e.value("yuxi_config_build_info", {{"version", "1.2.3"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_relay_leader"), 0);
    EXPECT_EQ(e.value("yuxi_config_l2_snapshot_loads_total"), 0);
    EXPECT_EQ(e.value("yuxi_config_source_state", {{"state", "starting"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_source_up", {{"source", "file"}}), 0);
    // No heartbeat before there is a segment: 0 would read as "stale for 50 years".
    EXPECT_FALSE(e.value("yuxi_config_heartbeat_timestamp_seconds"));
    EXPECT_EQ(e.value("yuxi_config_apply_duration_seconds_bucket", {{"le", "+Inf"}}), 0);
}

TEST(Metrics, RendersTheModeStatusAndThePushedEvents) {
    Metrics m("1.2.3");
    m.observe_apply(30us);
    m.observe_apply(2ms);
    m.observe_propagation(700us);
    m.count_updates_applied(5);
    m.heartbeat();
    const Exposition e = parse_exposition(m.render(database_status()));
    EXPECT_EQ(e.value("yuxi_config_ready"), 1);
    EXPECT_EQ(e.value("yuxi_config_revision"), 4242);
    EXPECT_EQ(e.value("yuxi_config_entries"), 1500);
    EXPECT_EQ(e.value("yuxi_config_segment_bytes"), 16 << 20);
    EXPECT_EQ(e.value("yuxi_config_segment_fill_ratio"), 0.25);
    EXPECT_EQ(e.value("yuxi_config_updates_applied_total"), 5);
    EXPECT_EQ(e.value("yuxi_config_apply_duration_seconds_count"), 2);
    EXPECT_EQ(e.value("yuxi_config_apply_duration_seconds_bucket", {{"le", "5e-05"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_apply_duration_seconds_bucket", {{"le", "0.0025"}}), 2);
    EXPECT_NEAR(*e.value("yuxi_config_apply_duration_seconds_sum"), 0.00203, 1e-9);
    EXPECT_EQ(e.value("yuxi_config_propagation_delay_seconds_bucket", {{"le", "0.001"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_source_up", {{"source", "postgres"}}), 1);
    EXPECT_FALSE(e.value("yuxi_config_source_up", {{"source", "file"}}));
    EXPECT_FALSE(e.value("yuxi_config_source_up", {{"source", "redis"}}));
    EXPECT_EQ(e.value("yuxi_config_source_state", {{"state", "ok"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_source_state", {{"state", "stale"}}), 0);
    EXPECT_EQ(e.value("yuxi_config_reconnects_total", {{"source", "postgres"}}), 3);
    EXPECT_EQ(e.value("yuxi_config_resyncs_total"), 1);
    EXPECT_EQ(e.value("yuxi_config_errors_total", {{"kind", "connect"}}), 2);
    EXPECT_EQ(e.value("yuxi_config_errors_total", {{"kind", "timeout"}}), 0);
    const double beat = *e.value("yuxi_config_heartbeat_timestamp_seconds");
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    EXPECT_NEAR(beat, now, 5);
}

TEST(Metrics, RendersTheRelayHooks) {
    Metrics m("1.2.3");
    m.set_relay_leader(true);
    m.count_l2_snapshot_load();
    m.set_source_up("redis", false);
    m.count_reconnect("redis");
    m.count_reconnect("redis");
    m.count_reconnect("postgres");
    m.count_error("redis");
    m.count_error("connect");
    m.count_resync();
    const Exposition e = parse_exposition(m.render(database_status()));
    EXPECT_EQ(e.value("yuxi_config_relay_leader"), 1);
    EXPECT_EQ(e.value("yuxi_config_l2_snapshot_loads_total"), 1);
    EXPECT_EQ(e.value("yuxi_config_source_up", {{"source", "redis"}}), 0);
    EXPECT_EQ(e.value("yuxi_config_reconnects_total", {{"source", "redis"}}), 2);
    EXPECT_EQ(e.value("yuxi_config_reconnects_total", {{"source", "postgres"}}), 4);
    EXPECT_EQ(e.value("yuxi_config_errors_total", {{"kind", "redis"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_errors_total", {{"kind", "connect"}}), 3);
    EXPECT_EQ(e.value("yuxi_config_resyncs_total"), 2);
    m.set_source_up("redis", true);
    m.set_relay_leader(false);
    const Exposition again = parse_exposition(m.render(database_status()));
    EXPECT_EQ(again.value("yuxi_config_source_up", {{"source", "redis"}}), 1);
    EXPECT_EQ(again.value("yuxi_config_relay_leader"), 0);
}

TEST(Metrics, EscapesWhateverALabelValueHolds) {
    Metrics m("v\"1\\\n");
    m.count_error("odd \"kind\"\\\nline");
    const Exposition e = parse_exposition(m.render(ModeStatus{}));
    EXPECT_EQ(e.value("yuxi_config_build_info", {{"version", "v\"1\\\n"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_errors_total", {{"kind", "odd \"kind\"\\\nline"}}), 1);
}

TEST(Metrics, CountsRefusedDocumentsBySourceAndReason) {
    reset_rejections();
    reject_document("pubsub", "malformed", "batch: \"op\" is a number, not a string");
    reject_document("pubsub", "malformed", "again");
    reject_document("stream", "exception", "a bug");
    // A loop callback that throws is a refused document of its source, never a crash.
    guarded("http", [] { throw std::runtime_error("boom"); });
    const Metrics m("1");
    const Exposition e = parse_exposition(m.render(ModeStatus{}));
    const std::string name = "yuxi_config_rejected_documents_total";
    EXPECT_EQ(e.value(name, {{"source", "pubsub"}, {"reason", "malformed"}}), 2);
    EXPECT_EQ(e.value(name, {{"source", "stream"}, {"reason", "exception"}}), 1);
    EXPECT_EQ(e.value(name, {{"source", "http"}, {"reason", "exception"}}), 1);
    reset_rejections();
}

TEST(Metrics, AFatalErrorStopsTheLoopThroughTheHandler) {
    reset_rejections();
    std::string stopped;
    set_fatal_handler([&](std::string_view why) { stopped = why; });
    guarded("database", [] { throw FatalError("the segment cannot be written"); });
    EXPECT_EQ(stopped, "the segment cannot be written");
    EXPECT_TRUE(rejection_counts().empty());
    reset_rejections();
}

// The parser is the test's ruler: it must refuse what Prometheus would misread.
TEST(ExpositionParser, RefusesMalformedExpositions) {
    const char* bad[] = {
        "a 1\n",                                                     // no TYPE
        "# TYPE a gauge\na 1",                                       // no final newline
        "# TYPE a gauge\n# TYPE a gauge\na 1\n",                     // TYPE twice
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n",  // not contiguous
        "# TYPE a gauge\na 1\na 2\n",                                // series twice
        "# TYPE a gauge\na{x=\"1\"} one\n",                          // value
        "# TYPE a gauge\na{x=\"\\t\"} 1\n",                          // escape
        "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",                    // label twice
        "# TYPE a gauge\na{1x=\"1\"} 1\n",                           // label name
        "# TYPE 1a gauge\n",                                         // metric name
        "# TYPE a gauge\n\na 1\n",                                   // empty line
        "# some comment\n",                                          // other comment
        "# TYPE a gauge\na 1 1700000000\n",                          // timestamp
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count "
        "1\n",  // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count "
        "3\n",                                                             // +Inf != count
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",  // no +Inf
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",        // no _sum
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} "
        "1\nh_sum 1\nh_count 1\n",  // le order
    };
    for (const char* text : bad) {
        EXPECT_THROW((void)parse_exposition(text), ExpositionError) << text;
    }
    EXPECT_NO_THROW((void)parse_exposition(
        "# HELP h a \\\\ help\\n\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n# TYPE g gauge\ng{a=\"x\\\"y\"} -Inf\n"));
}

}  // namespace
}  // namespace yuxi::config::agent
