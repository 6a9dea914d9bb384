#include "core/metrics.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace licentra::core::metrics {
namespace {

TEST(Metrics, CounterAndGaugeRenderWithHelpAndType) {
    Counter c;
    c.inc();
    c.inc(2);
    Gauge g;
    g.set(1.5);
    g.add(-0.25);
    Exposition out;
    out.counter("x_total", "Things.", static_cast<double>(c.value()));
    out.gauge("y", "A level.", g.value());
    EXPECT_EQ(out.text(),
              "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\n"
              "# HELP y A level.\n# TYPE y gauge\ny 1.25\n");
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    Exposition out;
    out.header("m", "line one\nback\\slash", "gauge");
    out.sample("m", {{"route", "/v1/\"x\""}, {"status", "200"}}, 7);
    EXPECT_EQ(out.text(),
              "# HELP m line one\\nback\\\\slash\n# TYPE m gauge\n"
              "m{route=\"/v1/\\\"x\\\"\",status=\"200\"} 7\n");
}

TEST(Metrics, ValuesFormat) {
    EXPECT_EQ(format_value(0), "0");
    EXPECT_EQ(format_value(42), "42");
    EXPECT_EQ(format_value(-3), "-3");
    EXPECT_EQ(format_value(0.005), "0.005");
    EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
    EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
    EXPECT_EQ(format_value(0.0 / 0.0), "NaN");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithUpperBoundsInclusive) {
    const double bounds[] = {1, 2, 5};
    Histogram h(bounds);
    for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 10.0}) h.observe(v);
    const auto s = h.snapshot();
    EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 4, 5, 6}));
    EXPECT_EQ(s.count, 6u);
    EXPECT_DOUBLE_EQ(s.sum, 18.0);
    Exposition out;
    out.histogram("d_seconds", "Durations.", h);
    EXPECT_EQ(out.text(),
              "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n"
              "d_seconds_bucket{le=\"1\"} 2\nd_seconds_bucket{le=\"2\"} 4\n"
              "d_seconds_bucket{le=\"5\"} 5\nd_seconds_bucket{le=\"+Inf\"} 6\n"
              "d_seconds_sum 18\nd_seconds_count 6\n");
}

TEST(Metrics, FamilyKeepsOneChildPerTupleAndRendersSorted) {
    Family<Counter> f({"route", "status"}, 16);
    f.at({"/b", "200"}).inc();
    f.at({"/a", "500"}).inc(2);
    f.at({"/b", "200"}).inc();
    EXPECT_EQ(&f.at({"/b", "200"}), &f.at({"/b", "200"}));
    EXPECT_NE(&f.at({"/a", "b"}), &f.at({"/a/", ""}));  // the separator tells them apart
    Exposition out;
    out.family("r_total", "Responses.", "counter", f);
    EXPECT_EQ(out.text(),
              "# HELP r_total Responses.\n# TYPE r_total counter\n"
              "r_total{route=\"/a\",status=\"500\"} 2\n"
              "r_total{route=\"/a\",status=\"b\"} 0\n"
              "r_total{route=\"/a/\",status=\"\"} 0\n"
              "r_total{route=\"/b\",status=\"200\"} 2\n");
}

TEST(Metrics, FamilyPastItsCapacityCountsUnderTheOverflowLabel) {
    Family<Counter> f({"key"}, 2);
    f.at({"a"}).inc();
    f.at({"b"}).inc();
    f.at({"c"}).inc();
    f.at({"d"}).inc(5);
    f.at({"a"}).inc();
    std::vector<std::pair<std::string, std::uint64_t>> seen;
    f.visit([&](const std::vector<std::string>& v, const Counter& c) {
        seen.emplace_back(v.at(0), c.value());
    });
    EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::uint64_t>>{
                        {"a", 2}, {"b", 1}, {std::string(kOverflow), 6}}));
}

TEST(Metrics, HistogramFamilyRendersEachChildWithItsLabels) {
    const double bounds[] = {0.1};
    HistogramFamily f({"algorithm"}, 4, bounds);
    f.at({"EdDSA"}).observe(0.05);
    f.at({"ES256"}).observe(0.5);
    Exposition out;
    out.family("s_seconds", "Signing.", f);  // sorted bytewise: "ES256" < "EdDSA"
    EXPECT_EQ(out.text(),
              "# HELP s_seconds Signing.\n# TYPE s_seconds histogram\n"
              "s_seconds_bucket{algorithm=\"ES256\",le=\"0.1\"} 0\n"
              "s_seconds_bucket{algorithm=\"ES256\",le=\"+Inf\"} 1\n"
              "s_seconds_sum{algorithm=\"ES256\"} 0.5\n"
              "s_seconds_count{algorithm=\"ES256\"} 1\n"
              "s_seconds_bucket{algorithm=\"EdDSA\",le=\"0.1\"} 1\n"
              "s_seconds_bucket{algorithm=\"EdDSA\",le=\"+Inf\"} 1\n"
              "s_seconds_sum{algorithm=\"EdDSA\"} 0.05\n"
              "s_seconds_count{algorithm=\"EdDSA\"} 1\n");
}

TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
    Family<Counter> f({"key"}, 64);
    const double bounds[] = {1};
    Histogram h(bounds);
    constexpr int kThreads = 4;
    constexpr int kRounds = 20000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < kRounds; ++i) {
                f.at({std::to_string(i % 8)}).inc();
                h.observe(i % 2 == 0 ? 0.5 : 2.0);
            }
        });
    }
    for (auto& t : threads) t.join();
    std::uint64_t total = 0;
    std::size_t children = 0;
    f.visit([&](const std::vector<std::string>&, const Counter& c) {
        total += c.value();
        ++children;
    });
    EXPECT_EQ(children, 8u);
    EXPECT_EQ(total, std::uint64_t{kThreads} * kRounds);
    const auto s = h.snapshot();
    EXPECT_EQ(s.count, std::uint64_t{kThreads} * kRounds);
    EXPECT_EQ(s.cumulative.at(0), std::uint64_t{kThreads} * kRounds / 2);
    EXPECT_DOUBLE_EQ(s.sum, kThreads * kRounds / 2 * 2.5);
}

TEST(Metrics, ProcessMetricsAreReadFromProc) {
    Exposition out;
    write_process_metrics(out);
    const std::string& t = out.text();
    for (const char* name :
         {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
          "process_start_time_seconds ", "process_max_fds ", "process_virtual_memory_bytes "}) {
        EXPECT_NE(t.find(std::string("\n") + name), std::string::npos) << name << "\n" << t;
    }
}

}  // namespace
}  // namespace licentra::core::metrics
