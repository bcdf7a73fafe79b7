// DATABASE_URL parsing and redaction.
#include "core/database_url.hpp"

#include <libpq-fe.h>

#include <cctype>
#include <charconv>
#include <string>

#include "core/text.hpp"

namespace yuxi::config {
namespace {

constexpr std::string_view kSchemes[] = {"postgresql", "postgres"};
constexpr std::size_t kMaxUrlBytes = 64 * 1024;

bool is_keyword_value(std::string_view s) {
    const auto eq = s.find('=');
    const auto scheme = s.find("://");
    return eq != std::string_view::npos && (scheme == std::string_view::npos || eq < scheme);
}

// "postgresql+asyncpg" -> "postgresql"; empty if not a PostgreSQL scheme.
std::string_view base_scheme(std::string_view scheme) {
    const std::string_view base = scheme.substr(0, scheme.find('+'));
    for (std::string_view known : kSchemes) {
        if (base == known) {
            return base;
        }
    }
    return {};
}

// libpq keyword=value quoting: single quotes, backslash-escaped.
std::string quote(std::string_view v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "'";
}

// Rewrites query parameters libpq does not know but SQLAlchemy drivers use.
std::string translate_query(std::string_view query) {
    std::string out;
    std::size_t pos = 0;
    while (pos <= query.size() && !query.empty()) {
        const std::size_t amp = query.find('&', pos);
        std::string_view param =
            query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
        std::string rewritten(param);
        if (param.starts_with("ssl=")) {
            const std::string_view v = param.substr(4);
            rewritten = "sslmode=" + std::string(v == "true"    ? "require"
                                                 : v == "false" ? "disable"
                                                                : v);
        }
        if (!param.empty() && !param.starts_with("prepared_statement_cache_size=") &&
            !param.starts_with("async_fallback=")) {
            out += out.empty() ? "" : "&";
            out += rewritten;
        }
        if (amp == std::string_view::npos) {
            break;
        }
        pos = amp + 1;
    }
    return out;
}

Decoded<std::string> to_libpq_conninfo(std::string_view url, std::string_view application_name) {
    while (!url.empty() && std::isspace(static_cast<unsigned char>(url.back())) != 0) {
        url.remove_suffix(1);
    }
    if (url.empty()) {
        return refuse("DATABASE_URL is empty: set it to postgresql://user:pass@host/db");
    }
    for (const char c : url) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return refuse("DATABASE_URL contains a control character");
        }
    }
    if (url.size() > kMaxUrlBytes) {
        return refuse("DATABASE_URL is " + std::to_string(url.size()) +
                      " bytes long, more than any connection string needs (limit " +
                      std::to_string(kMaxUrlBytes) + ")");
    }
    if (is_keyword_value(url)) {
        std::string out(url);
        if (out.find("application_name") == std::string::npos) {
            out += " application_name=" + quote(application_name);
        }
        return out;
    }
    const std::size_t sep = url.find("://");
    const std::string_view scheme = sep == std::string_view::npos ? url : url.substr(0, sep);
    const std::string_view base = base_scheme(scheme);
    if (sep == std::string_view::npos || base.empty()) {
        return refuse("DATABASE_URL '" + redact_database_url(url) +
                      "' is not a PostgreSQL URL: expected postgresql://, "
                      "postgresql+asyncpg:// or host=... dbname=...");
    }
    std::string_view rest = url.substr(sep + 3);
    if (rest.empty() || rest.front() == '?') {
        return refuse("DATABASE_URL '" + redact_database_url(url) + "' names no host");
    }
    const std::size_t q = rest.find('?');
    const std::string_view location = rest.substr(0, q);
    std::string query = q == std::string_view::npos ? "" : translate_query(rest.substr(q + 1));
    if (query.find("application_name=") == std::string::npos) {
        query += query.empty() ? "" : "&";
        query += "application_name=" + std::string(application_name);
    }
    return "postgresql://" + std::string(location) + "?" + query;
}

// The first of a comma-separated list of ports that is not 1..65535, or empty.
std::string bad_port_in(std::string_view ports) {
    for (;;) {
        const std::string_view p = ports.substr(0, ports.find(','));
        unsigned n = 0;
        const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), n);
        if (!p.empty() &&
            (ec != std::errc() || end != p.data() + p.size() || n == 0 || n > 65535)) {
            return std::string(p);
        }
        if (p.size() == ports.size()) {
            return {};
        }
        ports.remove_prefix(p.size() + 1);
    }
}

// libpq's complaint about `conninfo`, with anything it quoted from the string (part of a
// password, maybe) masked; empty if libpq accepts it.
std::string libpq_problem(const std::string& conninfo) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (opts != nullptr) {
        std::string problem;
        for (const PQconninfoOption* o = opts; o->keyword != nullptr && problem.empty(); ++o) {
            if (std::string_view(o->keyword) == "port" && o->val != nullptr) {
                if (const std::string bad = bad_port_in(o->val); !bad.empty()) {
                    problem = "port '" + bad + "' is not a number from 1 to 65535";
                }
            }
        }
        PQconninfoFree(opts);
        return problem;
    }
    std::string detail = err != nullptr ? one_line(err) : "out of memory";
    PQfreemem(err);
    // Keeps a quoted single character ("missing "=" after ..."), masks anything longer.
    std::string masked;
    for (std::size_t i = 0; i < detail.size(); ++i) {
        const std::size_t close = detail[i] == '"' ? detail.find('"', i + 1) : std::string::npos;
        if (close == std::string::npos) {
            masked += detail[i];
            continue;
        }
        masked += close - i == 2 ? detail.substr(i, 3) : "\"***\"";
        i = close;
    }
    return "not a valid PostgreSQL connection string: " + masked;
}

}  // namespace

Decoded<std::string> database_conninfo(std::string_view url, std::string_view application_name) {
    auto conninfo = to_libpq_conninfo(url, application_name);
    if (!conninfo) {
        return conninfo;
    }
    if (const std::string problem = libpq_problem(*conninfo); !problem.empty()) {
        return refuse("DATABASE_URL '" + redact_database_url(url) + "': " + problem);
    }
    return conninfo;
}

std::string redact_database_url(std::string_view url) {
    std::string out(url);
    // URI form: scheme://user:PASSWORD@host
    const std::size_t sep = out.find("://");
    if (sep != std::string::npos) {
        // The last '@' before the query: a password may hold an unencoded '@' or '/'.
        const std::size_t start = sep + 3;
        const std::size_t query = out.find('?', start);
        const std::size_t at = out.rfind('@', query == std::string::npos ? out.size() : query);
        if (at != std::string::npos && at > start) {
            const std::size_t colon = out.find(':', start);
            if (colon != std::string::npos && colon < at) {
                out.replace(colon + 1, at - colon - 1, "***");
            }
        }
    }
    // keyword=value form, and password= in a URI's query string.
    for (std::size_t p = out.find("password="); p != std::string::npos;
         p = out.find("password=", p + 1)) {
        const std::size_t v = p + 9;
        std::size_t end = v;
        if (end < out.size() && out[end] == '\'') {
            end = out.find('\'', end + 1);
            end = end == std::string::npos ? out.size() : end + 1;
        } else {
            while (end < out.size() && out[end] != ' ' && out[end] != '&') {
                ++end;
            }
        }
        out.replace(v, end - v, "***");
    }
    return out;
}

}  // namespace yuxi::config
