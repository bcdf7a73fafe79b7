// A strict parser of the Prometheus text exposition format 0.0.4, for the tests of
// /metrics. Stricter than Prometheus itself: it accepts only what a correct exporter
// writes, and throws ExpositionError naming the line for anything else.
//
// Checked: every line ends in '\n' and is `# HELP name text`, `# TYPE name type` or a
// sample `name{label="value",...} value`; names and label names are valid; label values
// and HELP text use only the allowed escapes; HELP and TYPE come at most once per family
// and before its samples; every sample belongs to a family with a TYPE; a family's lines
// are contiguous; no series appears twice; histogram buckets are in increasing `le`
// order, cumulative (non-decreasing), end with le="+Inf" equal to _count, and each
// histogram has _sum and _count.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace yuxi::config::test {

class ExpositionError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

using Labels = std::map<std::string, std::string>;

struct Sample {
    std::string name;
    Labels labels;
    double value = 0;
};

struct Family {
    std::string name;
    std::string type;
    std::string help;
    std::vector<Sample> samples;
};

class Exposition {
  public:
    std::map<std::string, Family> families;

    // The value of the series `name` with exactly `labels`; nothing if absent.
    std::optional<double> value(std::string_view name, const Labels& labels = {}) const {
        for (const auto& [fname, f] : families) {
            for (const Sample& s : f.samples) {
                if (s.name == name && s.labels == labels) {
                    return s.value;
                }
            }
        }
        return std::nullopt;
    }

    const Family* family(std::string_view name) const {
        const auto it = families.find(std::string(name));
        return it == families.end() ? nullptr : &it->second;
    }
};

namespace exposition_detail {

inline bool name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
inline bool name_char(char c) {
    return name_start(c) || (c >= '0' && c <= '9');
}

inline bool valid_metric_name(std::string_view n) {
    if (n.empty() || !name_start(n[0])) {
        return false;
    }
    for (const char c : n) {
        if (!name_char(c)) {
            return false;
        }
    }
    return true;
}

inline bool valid_label_name(std::string_view n) {
    if (n.empty() || n[0] == ':' || !name_start(n[0]) || n.starts_with("__")) {
        return false;
    }
    for (const char c : n) {
        if (!name_char(c) || c == ':') {
            return false;
        }
    }
    return true;
}

// Go's ParseFloat as Prometheus uses it: a decimal or exponent number, +Inf, -Inf, NaN.
inline std::optional<double> parse_float(std::string_view t) {
    if (t == "+Inf" || t == "Inf") {
        return HUGE_VAL;
    }
    if (t == "-Inf") {
        return -HUGE_VAL;
    }
    if (t == "NaN") {
        return std::nan("");
    }
    if (t.empty()) {
        return std::nullopt;
    }
    for (const char c : t) {
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
            return std::nullopt;
        }
    }
    const std::string s(t);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) {
        return std::nullopt;
    }
    return v;
}

// The family a sample name belongs to, given the families declared so far.
inline std::string family_of(const std::string& name, const std::map<std::string, Family>& fams) {
    if (fams.contains(name)) {
        return name;
    }
    for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (name.ends_with(suffix)) {
            const std::string base = name.substr(0, name.size() - suffix.size());
            const auto it = fams.find(base);
            if (it != fams.end() && it->second.type == "histogram") {
                return base;
            }
        }
    }
    return name;
}

class Parser {
  public:
    explicit Parser(std::string_view text) : text_(text) {}

    Exposition run() {
        if (!text_.empty() && text_.back() != '\n') {
            throw ExpositionError("the last line does not end in a newline");
        }
        std::size_t pos = 0;
        while (pos < text_.size()) {
            const std::size_t nl = text_.find('\n', pos);
            line_ = text_.substr(pos, nl - pos);
            ++line_no_;
            pos = nl + 1;
            if (line_.empty()) {
                fail("empty line");
            }
            if (line_[0] == '#') {
                comment();
            } else {
                sample();
            }
        }
        for (const auto& [name, f] : out_.families) {
            if (f.type == "histogram") {
                check_histogram(f);
            }
        }
        return std::move(out_);
    }

  private:
    [[noreturn]] void fail(const std::string& why) const {
        throw ExpositionError("line " + std::to_string(line_no_) + ": " + why + ": '" +
                              std::string(line_.substr(0, 200)) + "'");
    }

    // Moves to `family`: a family already left may not come back.
    void enter(const std::string& family) {
        if (family == current_) {
            return;
        }
        if (closed_.contains(family)) {
            fail("family '" + family + "' is not contiguous");
        }
        if (!current_.empty()) {
            closed_.insert(current_);
        }
        current_ = family;
    }

    void comment() {
        const bool help = line_.starts_with("# HELP ");
        const bool type = line_.starts_with("# TYPE ");
        if (!help && !type) {
            fail("a comment other than HELP or TYPE");
        }
        const std::string_view rest = line_.substr(7);
        const std::size_t sp = rest.find(' ');
        if (sp == std::string_view::npos) {
            fail("HELP or TYPE without its text");
        }
        const std::string name(rest.substr(0, sp));
        const std::string_view text = rest.substr(sp + 1);
        if (!valid_metric_name(name)) {
            fail("invalid metric name");
        }
        enter(name);
        Family& f = out_.families[name];
        f.name = name;
        if (help) {
            if (seen_help_.contains(name)) {
                fail("a second HELP");
            }
            seen_help_.insert(name);
            f.help = unescape(text, false);
        } else {
            if (!f.type.empty()) {
                fail("a second TYPE");
            }
            if (!f.samples.empty()) {
                fail("TYPE after samples");
            }
            const std::set<std::string_view> kTypes = {"counter", "gauge", "histogram", "summary",
                                                       "untyped"};
            if (!kTypes.contains(text)) {
                fail("unknown type");
            }
            f.type = std::string(text);
        }
    }

    std::string unescape(std::string_view text, bool quotes) const {
        std::string out;
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] != '\\') {
                if (quotes && text[i] == '"') {
                    fail("an unescaped quote");
                }
                out += text[i];
                continue;
            }
            if (++i == text.size()) {
                fail("a trailing backslash");
            }
            switch (text[i]) {
                case '\\':
                    out += '\\';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case '"':
                    if (!quotes) {
                        fail("an escaped quote in HELP");
                    }
                    out += '"';
                    break;
                default:
                    fail("an invalid escape");
            }
        }
        return out;
    }

    Labels labels(std::string_view& rest) {
        Labels out;
        rest.remove_prefix(1);  // '{'
        while (!rest.empty() && rest[0] != '}') {
            const std::size_t eq = rest.find('=');
            if (eq == std::string_view::npos) {
                fail("a label without '='");
            }
            const std::string name(rest.substr(0, eq));
            if (!valid_label_name(name)) {
                fail("invalid label name '" + name + "'");
            }
            rest.remove_prefix(eq + 1);
            if (rest.empty() || rest[0] != '"') {
                fail("a label value without quotes");
            }
            std::size_t i = 1;
            while (i < rest.size() && rest[i] != '"') {
                i += rest[i] == '\\' ? 2 : 1;
            }
            if (i >= rest.size()) {
                fail("an unterminated label value");
            }
            if (!out.emplace(name, unescape(rest.substr(1, i - 1), true)).second) {
                fail("a label given twice");
            }
            rest.remove_prefix(i + 1);
            if (!rest.empty() && rest[0] == ',') {
                rest.remove_prefix(1);
            } else if (rest.empty() || rest[0] != '}') {
                fail("labels not separated by ','");
            }
        }
        if (rest.empty()) {
            fail("unterminated labels");
        }
        rest.remove_prefix(1);
        return out;
    }

    void sample() {
        std::string_view rest = line_;
        std::size_t n = 0;
        while (n < rest.size() && name_char(rest[n])) {
            ++n;
        }
        Sample s;
        s.name = std::string(rest.substr(0, n));
        if (!valid_metric_name(s.name)) {
            fail("invalid metric name");
        }
        rest.remove_prefix(n);
        if (!rest.empty() && rest[0] == '{') {
            s.labels = labels(rest);
        }
        if (rest.empty() || rest[0] != ' ') {
            fail("no space before the value");
        }
        rest.remove_prefix(1);
        const std::size_t sp = rest.find(' ');
        const auto v = parse_float(rest.substr(0, sp));
        if (!v) {
            fail("invalid value");
        }
        if (sp != std::string_view::npos) {
            fail("a timestamp (this exporter writes none)");
        }
        s.value = *v;
        const std::string fam = family_of(s.name, out_.families);
        auto it = out_.families.find(fam);
        if (it == out_.families.end() || it->second.type.empty()) {
            fail("a sample without a TYPE");
        }
        enter(fam);
        std::string id = s.name;
        for (const auto& [k, val] : s.labels) {
            id += "\x1f" + k + "=" + val;
        }
        if (!series_.insert(id).second) {
            fail("a series given twice");
        }
        if (it->second.type == "histogram" && s.name == fam) {
            fail("a histogram sample without _bucket, _sum or _count");
        }
        it->second.samples.push_back(std::move(s));
    }

    static void check_histogram(const Family& f) {
        // Group by the labels other than le.
        std::map<Labels, std::vector<const Sample*>> buckets;
        std::map<Labels, double> sums, counts;
        for (const Sample& s : f.samples) {
            Labels rest = s.labels;
            if (s.name == f.name + "_bucket") {
                if (!rest.contains("le")) {
                    throw ExpositionError(f.name + ": a bucket without le");
                }
                rest.erase("le");
                buckets[rest].push_back(&s);
            } else if (s.name == f.name + "_sum") {
                sums[rest] = s.value;
            } else {
                counts[rest] = s.value;
            }
        }
        if (buckets.empty()) {
            throw ExpositionError(f.name + ": a histogram without buckets");
        }
        for (const auto& [key, list] : buckets) {
            double prev_le = -HUGE_VAL;
            double prev_count = 0;
            for (const Sample* b : list) {
                const auto le = parse_float(b->labels.at("le"));
                if (!le || !(*le > prev_le)) {
                    throw ExpositionError(f.name + ": le not increasing at " + b->labels.at("le"));
                }
                if (b->value < prev_count) {
                    throw ExpositionError(f.name +
                                          ": buckets not cumulative at le=" + b->labels.at("le"));
                }
                prev_le = *le;
                prev_count = b->value;
            }
            if (!std::isinf(prev_le)) {
                throw ExpositionError(f.name + ": no le=\"+Inf\" bucket");
            }
            if (!sums.contains(key) || !counts.contains(key)) {
                throw ExpositionError(f.name + ": no _sum or _count");
            }
            if (counts.at(key) != prev_count) {
                throw ExpositionError(f.name + ": +Inf bucket differs from _count");
            }
        }
    }

    std::string_view text_;
    std::string_view line_;
    std::size_t line_no_ = 0;
    Exposition out_;
    std::string current_;
    std::set<std::string> closed_;
    std::set<std::string> seen_help_;
    std::set<std::string> series_;
};

}  // namespace exposition_detail

// Parses `text`; throws ExpositionError on the first violation.
inline Exposition parse_exposition(std::string_view text) {
    return exposition_detail::Parser(text).run();
}

}  // namespace yuxi::config::test
