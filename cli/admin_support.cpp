// The admin library from yuxi-configctl's flags, and what its errors mean as exit statuses.
#include "cli/admin_support.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <ostream>
#include <sstream>

#include "core/redis_keys.hpp"
#include "yuxi/config/client.hpp"

namespace yuxi::config::cli {
namespace {

std::chrono::milliseconds millis(double seconds) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double>(seconds));
}

}  // namespace

std::string quote(std::string_view s) {
    using nlohmann::json;
    return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

RedisEndpoint redis_endpoint(const RedisFlags& flags) {
    RedisEndpoint e;
    try {
        e = RedisEndpoint::from_env();
    } catch (const std::invalid_argument& x) {
        throw UsageError(x.what());
    }
    if (flags.host) {
        e.host = *flags.host;
    }
    if (flags.port) {
        e.port = *flags.port;
    }
    if (flags.host) {
        e.sentinels.clear();  // an explicit host wins over REDIS_SENTINELS
    }
    if (flags.sentinels) {
        e.sentinels = {*flags.sentinels};
    }
    if (flags.sentinel_master) {
        e.sentinel_master = *flags.sentinel_master;
    }
    return e;
}

FleetTrust fleet_trust(const RedisFlags& flags) {
    FleetTrust t;
    t.key_file = flags.signing_key_file;
    t.insecure = flags.insecure;
    return t;
}

admin::DatabaseTarget database_target(const DatabaseFlags& db) {
    auto t = admin::resolve_database(db.database_url);
    if (!t) {
        throw UsageError("'" + db.command +
                         "' needs the database: pass --database-url URL or set DATABASE_URL "
                         "(e.g. postgresql://user:password@host:5432/yuxi_know)");
    }
    return std::move(*t);
}

Admin open_admin(const DatabaseFlags& db, const WaitFlags* wait) {
    AdminOptions o;
    o.database_url = db.database_url;
    o.segment = db.segment;
    o.application_name = "yuxi-configctl";
    if (wait != nullptr) {
        o.redis = redis_endpoint(wait->redis);
        o.trust = fleet_trust(wait->redis);
        o.stale_after = millis(wait->stale_after);
    }
    o.database_url = database_target(db).url;
    return Admin(std::move(o));
}

Exit exit_of(AdminError::Kind kind) noexcept {
    switch (kind) {
        case AdminError::Kind::usage:
            return Exit::usage;
        case AdminError::Kind::conflict:
            return Exit::conflict;
        case AdminError::Kind::invalid_value:
            return Exit::invalid;
        case AdminError::Kind::unavailable:
            return Exit::unavailable;
        case AdminError::Kind::timeout:
            return Exit::timeout;
        case AdminError::Kind::rejected:
            return Exit::rejected;
        case AdminError::Kind::not_found:
            return Exit::not_found;
    }
    return Exit::usage;
}

Waits::Waits(Admin& admin, const DatabaseFlags& db, const WaitFlags& flags)
    : admin_(admin), flags_(flags) {
    if (flags.local) {
        (void)Client::open(db.segment);  // SegmentError: the command fails, nothing written
    }
    if (flags.all) {
        try {
            admin.fleet().ping();
        } catch (const AdminError& e) {
            throw AdminError(e.kind(), std::string(e.what()) + "; nothing was written");
        }
    }
}

Exit Waits::finish(std::uint64_t revision, std::ostream& err) {
    try {
        if (flags_.local) {
            admin_.wait(revision, WaitScope::local, millis(flags_.timeout.value_or(10.0)));
        }
        if (flags_.all) {
            Fleet& fleet = admin_.fleet();
            const std::size_t waited = fleet.wait(revision, millis(flags_.timeout.value_or(30.0)));
            for (const std::string& w : fleet.take_warnings()) {
                err << "yuxi-configctl: warning: " << w << '\n';
            }
            if (waited == 0) {
                err << "yuxi-configctl: no live agent reports to Redis at " << fleet.endpoint().host
                    << ':' << fleet.endpoint().port << " (" << kAgentsHash
                    << "); nothing to wait for\n";
            }
        }
    } catch (const AdminError& e) {
        err << "yuxi-configctl: the write is committed (revision " << revision << "), but "
            << e.what() << '\n';
        return exit_of(e.kind());
    }
    return Exit::ok;
}

std::string read_input(const std::string& path) {
    std::stringstream ss;
    if (path == "-") {
        ss << std::cin.rdbuf();
        return ss.str();
    }
    std::ifstream in(path, std::ios::binary);
    if (in) {
        ss << in.rdbuf();
    }
    if (!in || in.bad()) {
        throw CommandError(Exit::usage, "cannot read '" + path + "': " + std::strerror(errno) +
                                            "; nothing was written");
    }
    return ss.str();
}

}  // namespace yuxi::config::cli
