#include "core/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace licentra::core::metrics {

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::observe(double v) noexcept {
    // Bucket i counts bounds_[i-1] < v <= bounds_[i]; the last one everything above.
    const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
    counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.cumulative.reserve(bounds_.size() + 1);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        running += counts_[i].load(std::memory_order_relaxed);
        s.cumulative.push_back(running);
    }
    s.count = running;
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

namespace {

// HELP text: backslash and newline escaped.
std::string escape_help(std::string_view help) {
    std::string out;
    for (char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

void append_labels(std::string& out, std::span<const Label> labels, const Label* extra = nullptr) {
    if (labels.empty() && extra == nullptr) return;
    out += '{';
    bool first = true;
    auto add = [&](const Label& l) {
        if (!first) out += ',';
        first = false;
        out += l.name;
        out += "=\"";
        out += escape_label_value(l.value);
        out += '"';
    };
    for (const auto& l : labels) add(l);
    if (extra != nullptr) add(*extra);
    out += '}';
}

std::vector<Label> zip(const std::vector<std::string>& names,
                       const std::vector<std::string>& values) {
    std::vector<Label> labels;
    for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
        labels.push_back({names[i], values[i]});
    }
    return labels;
}

}  // namespace

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    if (value == std::trunc(value) && std::fabs(value) < 1e15) {
        return std::to_string(static_cast<long long>(value));
    }
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, value);
    return std::string(buf, r.ptr);
}

void Exposition::header(std::string_view name, std::string_view help, std::string_view type) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += escape_help(help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void Exposition::sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    sample(name, std::span<const Label>(labels.begin(), labels.size()), value);
}

void Exposition::sample(std::string_view name, std::span<const Label> labels, double value) {
    out_ += name;
    append_labels(out_, labels);
    out_ += ' ';
    out_ += format_value(value);
    out_ += '\n';
}

void Exposition::histogram(std::string_view name, std::span<const Label> labels,
                           const Histogram& h) {
    const auto s = h.snapshot();
    const auto bounds = h.bounds();
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
        const std::string le = i < bounds.size() ? format_value(bounds[i]) : std::string("+Inf");
        const Label extra{"le", le};
        out_ += bucket;
        append_labels(out_, labels, &extra);
        out_ += ' ';
        out_ += format_value(static_cast<double>(s.cumulative[i]));
        out_ += '\n';
    }
    sample(std::string(name) + "_sum", labels, s.sum);
    sample(std::string(name) + "_count", labels, static_cast<double>(s.count));
}

void Exposition::counter(std::string_view name, std::string_view help, double value) {
    header(name, help, "counter");
    sample(name, std::span<const Label>(), value);
}

void Exposition::gauge(std::string_view name, std::string_view help, double value) {
    header(name, help, "gauge");
    sample(name, std::span<const Label>(), value);
}

void Exposition::histogram(std::string_view name, std::string_view help, const Histogram& h) {
    header(name, help, "histogram");
    histogram(name, std::span<const Label>(), h);
}

void Exposition::family(std::string_view name, std::string_view help, std::string_view type,
                        const Family<Counter>& f) {
    header(name, help, type);
    f.visit([&](const std::vector<std::string>& values, const Counter& c) {
        const auto labels = zip(f.label_names(), values);
        sample(name, labels, static_cast<double>(c.value()));
    });
}

void Exposition::family(std::string_view name, std::string_view help, std::string_view type,
                        const Family<Gauge>& f) {
    header(name, help, type);
    f.visit([&](const std::vector<std::string>& values, const Gauge& g) {
        const auto labels = zip(f.label_names(), values);
        sample(name, labels, g.value());
    });
}

void Exposition::family(std::string_view name, std::string_view help, const Family<Histogram>& f) {
    header(name, help, "histogram");
    f.visit([&](const std::vector<std::string>& values, const Histogram& h) {
        const auto labels = zip(f.label_names(), values);
        histogram(name, labels, h);
    });
}

namespace {

std::string read_text(const char* path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return in ? s.str() : std::string();
}

}  // namespace

void write_process_metrics(Exposition& out) {
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const long page = ::sysconf(_SC_PAGESIZE);
    // /proc/self/stat: the fields after the command name (which may hold spaces), proc(5).
    const std::string stat = read_text("/proc/self/stat");
    const auto close = stat.rfind(')');
    if (close != std::string::npos && ticks > 0) {
        std::istringstream fields(stat.substr(close + 2));
        std::vector<std::string> f;
        for (std::string x; fields >> x;) f.push_back(x);
        // f[0] is field 3 (state): field n is f[n - 3].
        if (f.size() > 21) {
            const double utime = std::stod(f[14 - 3]);
            const double stime = std::stod(f[15 - 3]);
            const double start_ticks = std::stod(f[22 - 3]);
            const double vsize = std::stod(f[23 - 3]);
            const double rss_pages = std::stod(f[24 - 3]);
            out.counter("process_cpu_seconds_total", "Total user and system CPU time in seconds.",
                        (utime + stime) / static_cast<double>(ticks));
            out.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                      rss_pages * static_cast<double>(page));
            out.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", vsize);
            // Boot time (btime in /proc/stat) plus the start time in ticks after boot.
            std::istringstream proc_stat(read_text("/proc/stat"));
            for (std::string line; std::getline(proc_stat, line);) {
                if (line.rfind("btime ", 0) == 0) {
                    const double btime = std::stod(line.substr(6));
                    out.gauge("process_start_time_seconds",
                              "Start time of the process since the Unix epoch in seconds.",
                              btime + start_ticks / static_cast<double>(ticks));
                    break;
                }
            }
        }
    }
    if (DIR* d = ::opendir("/proc/self/fd")) {
        std::uint64_t n = 0;
        while (const dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.') ++n;
        }
        ::closedir(d);
        out.gauge("process_open_fds", "Number of open file descriptors.",
                  static_cast<double>(n > 0 ? n - 1 : 0));  // minus the directory's own
    }
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        out.gauge("process_max_fds", "Maximum number of open file descriptors.",
                  static_cast<double>(rl.rlim_cur));
    }
}

}  // namespace licentra::core::metrics
