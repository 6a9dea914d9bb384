// Metric primitives for /metrics: counters, gauges, histograms with fixed buckets, families of
// them by label values, and the Prometheus text exposition format (version 0.0.4).
//
// Updates are lock-free: counters and gauges are one atomic each, a histogram is an array of
// atomic bucket counts plus an atomic sum. A Family finds the child for a tuple of label values
// in a fixed-size open-addressing table whose slots are claimed with one compare-and-swap; a
// child is allocated once, the first time its label values are seen, and lives as long as the
// family. Label sets must be bounded (route templates, key names, algorithms, CKR_* names): past
// the family's capacity every new tuple is counted under the label value kOverflow.
//
// Rendering (Exposition) runs at scrape time only and may allocate and sort.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace licentra::core::metrics {

// The label value of every label of a family's overflow child.
inline constexpr std::string_view kOverflow = "_overflow";

class Counter {
  public:
    void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t value() const noexcept {
        return v_.load(std::memory_order_relaxed);
    }

  private:
    std::atomic<std::uint64_t> v_{0};
};

class Gauge {
  public:
    void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
    void add(double d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
    [[nodiscard]] double value() const noexcept { return v_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> v_{0};
};

// Upper bounds of latencies in seconds: 100 µs to 10 s.
inline constexpr double kLatencySeconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                             1,      2.5,     5,      10};
// Upper bounds of sizes (entries, items): 1 to 4096 in powers of two.
inline constexpr double kSizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};

// A histogram with fixed upper bounds (strictly increasing, finite; +Inf is implicit).
class Histogram {
  public:
    explicit Histogram(std::span<const double> bounds);
    Histogram(const Histogram&) = delete;
    Histogram& operator=(const Histogram&) = delete;

    void observe(double v) noexcept;

    struct Snapshot {
        std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (== count)
        double sum = 0;
        std::uint64_t count = 0;
    };
    // Counts read one bucket at a time; count is the +Inf bucket, so the buckets are always
    // consistent with each other and with _count.
    [[nodiscard]] Snapshot snapshot() const;
    [[nodiscard]] std::span<const double> bounds() const noexcept { return bounds_; }

  private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1, not cumulative
    std::atomic<double> sum_{0};
};

// Children of type T (Counter, Gauge, Histogram) by a tuple of label values.
template <class T>
class Family {
  public:
    using Make = std::function<std::unique_ptr<T>()>;

    // capacity: the most distinct label tuples kept apart; make: builds a child (default:
    // std::make_unique<T>()).
    Family(std::vector<std::string> label_names, std::size_t capacity, Make make = {})
        : names_(std::move(label_names)),
          capacity_(capacity),
          make_(make ? std::move(make) : default_make()) {
        std::size_t size = 8;
        while (size < 2 * capacity_) size *= 2;
        slots_ = std::vector<std::atomic<Node*>>(size);
    }
    ~Family() {
        for (auto& s : slots_) delete s.load();
        delete overflow_.load();
    }
    Family(const Family&) = delete;
    Family& operator=(const Family&) = delete;

    [[nodiscard]] const std::vector<std::string>& label_names() const noexcept { return names_; }

    // The child for these label values (as many as label_names()). Lock-free; allocates the
    // first time a tuple is seen.
    T& at(std::initializer_list<std::string_view> values) {
        return at(std::span<const std::string_view>(values.begin(), values.size()));
    }
    T& at(std::span<const std::string_view> values) {
        const std::uint64_t h = hash(values);
        const std::size_t mask = slots_.size() - 1;
        Node* fresh = nullptr;
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            auto& slot = slots_[(h + i) & mask];
            Node* n = slot.load(std::memory_order_acquire);
            if (n == nullptr) {
                if (used_.load(std::memory_order_relaxed) >= capacity_) break;
                if (fresh == nullptr) fresh = new Node(h, values, make_());
                if (slot.compare_exchange_strong(n, fresh, std::memory_order_acq_rel,
                                                 std::memory_order_acquire)) {
                    used_.fetch_add(1, std::memory_order_relaxed);
                    return *fresh->metric;
                }
                // Another thread claimed the slot first: n is its node.
            }
            if (n->matches(h, values)) {
                delete fresh;
                return *n->metric;
            }
        }
        delete fresh;
        return overflow();
    }

    // Calls fn(label values, child) for every child, sorted by label values.
    void visit(const std::function<void(const std::vector<std::string>&, const T&)>& fn) const {
        std::vector<const Node*> nodes;
        for (const auto& s : slots_) {
            if (const Node* n = s.load(std::memory_order_acquire)) nodes.push_back(n);
        }
        std::sort(nodes.begin(), nodes.end(),
                  [](const Node* a, const Node* b) { return a->values < b->values; });
        for (const Node* n : nodes) fn(n->values, *n->metric);
        if (const Node* o = overflow_.load(std::memory_order_acquire)) fn(o->values, *o->metric);
    }

  private:
    static Make default_make() {
        if constexpr (std::is_default_constructible_v<T>) {
            return [] { return std::make_unique<T>(); };
        } else {
            return {};
        }
    }

    struct Node {
        Node(std::uint64_t h, std::span<const std::string_view> v, std::unique_ptr<T> m)
            : hash(h), values(v.begin(), v.end()), metric(std::move(m)) {}
        bool matches(std::uint64_t h, std::span<const std::string_view> v) const {
            if (h != hash || v.size() != values.size()) return false;
            for (std::size_t i = 0; i < v.size(); ++i) {
                if (v[i] != values[i]) return false;
            }
            return true;
        }
        std::uint64_t hash;
        std::vector<std::string> values;
        std::unique_ptr<T> metric;
    };

    static std::uint64_t hash(std::span<const std::string_view> values) noexcept {
        std::uint64_t h = 14695981039346656037ULL;  // FNV-1a
        for (auto v : values) {
            for (unsigned char c : v) h = (h ^ c) * 1099511628211ULL;
            h = (h ^ 0xFFU) * 1099511628211ULL;  // separator: ("a","b") != ("ab","")
        }
        return h;
    }

    T& overflow() {
        Node* o = overflow_.load(std::memory_order_acquire);
        if (o != nullptr) return *o->metric;
        std::vector<std::string_view> values(names_.size(), kOverflow);
        auto* fresh = new Node(0, values, make_());
        if (overflow_.compare_exchange_strong(o, fresh, std::memory_order_acq_rel,
                                              std::memory_order_acquire)) {
            return *fresh->metric;
        }
        delete fresh;
        return *o->metric;
    }

    std::vector<std::string> names_;
    std::size_t capacity_;
    Make make_;
    std::vector<std::atomic<Node*>> slots_;
    std::atomic<std::size_t> used_{0};
    std::atomic<Node*> overflow_{nullptr};
};

// A family of histograms sharing one set of bounds.
class HistogramFamily : public Family<Histogram> {
  public:
    HistogramFamily(std::vector<std::string> label_names, std::size_t capacity,
                    std::span<const double> bounds)
        : Family<Histogram>(std::move(label_names), capacity,
                            [b = std::vector<double>(bounds.begin(), bounds.end())] {
                                return std::make_unique<Histogram>(b);
                            }) {}
};

struct Label {
    std::string_view name;
    std::string_view value;
};

// Builds a Prometheus text exposition (text/plain; version=0.0.4). Call header() once per
// metric name, then its samples.
class Exposition {
  public:
    // "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram).
    void header(std::string_view name, std::string_view help, std::string_view type);
    void sample(std::string_view name, std::initializer_list<Label> labels, double value);
    void sample(std::string_view name, std::span<const Label> labels, double value);
    // The _bucket, _sum and _count samples of one histogram.
    void histogram(std::string_view name, std::span<const Label> labels, const Histogram& h);

    // One unlabelled metric with its header.
    void counter(std::string_view name, std::string_view help, double value);
    void gauge(std::string_view name, std::string_view help, double value);
    void histogram(std::string_view name, std::string_view help, const Histogram& h);
    // A whole family with its header (type "counter" or "gauge" for Family<Counter/Gauge>).
    void family(std::string_view name, std::string_view help, std::string_view type,
                const Family<Counter>& f);
    void family(std::string_view name, std::string_view help, std::string_view type,
                const Family<Gauge>& f);
    void family(std::string_view name, std::string_view help, const Family<Histogram>& f);

    [[nodiscard]] const std::string& text() const noexcept { return out_; }
    [[nodiscard]] std::string take() noexcept { return std::move(out_); }

  private:
    std::string out_;
};

// A label value as the text format writes it between quotes: \ " and newline escaped.
[[nodiscard]] std::string escape_label_value(std::string_view value);
// A sample value: integers without a fraction, +Inf, -Inf, NaN, else the shortest round-trip.
[[nodiscard]] std::string format_value(double value);

// The standard process metrics from /proc/self (Linux): process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds. A file that cannot be read leaves its metrics out.
void write_process_metrics(Exposition& out);

}  // namespace licentra::core::metrics
