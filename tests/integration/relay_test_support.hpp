// What the relay's tests share: a fleet of real agents on a fresh database per test and a
// private redis-server, and helpers to read the fleet's state (relay_test.cpp,
// signing_test.cpp).
#pragma once

#include <regex>

#include "core/signing.hpp"
#include "database_test_support.hpp"
#include "redis_test_support.hpp"

namespace yuxi::config::test {

inline constexpr int kFleet = 5;

// The revisions an agent's log says it published, in log order.
inline std::vector<std::uint64_t> published_revisions(const std::string& log) {
    static const std::regex re("published revision ([0-9]+)");
    std::vector<std::uint64_t> out;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
        out.push_back(std::stoull((*it)[1].str()));
    }
    return out;
}

// `document` signed with the fleet's key, as the relay signs what it writes.
inline std::string sealed(const std::string& document, const char* key = kTestSigningKey) {
    const KeyRing ring(*SigningKey::from_base64(key, "test key"));
    return ring.sign(document);
}

inline std::uint64_t unix_now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

class RelayTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto url = env_var("YUXI_TEST_DATABASE_URL");
        if (!url) {
            GTEST_SKIP() << "YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)";
        }
        if (redis_server_bin().empty()) {
            GTEST_SKIP() << "no redis-server";
        }
        ASSERT_TRUE(redis_.start());
        dir_ = temp_dir("relay");
        db_ = std::make_unique<TestDatabase>(*url);
        pg_ = std::make_unique<Pg>(db_->url());
        pg_->exec(
            "INSERT INTO system_configs (key, value, category) VALUES "
            "('sentinel', '\"always here\"', 'basic')");
        tag_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }

    void TearDown() override {
        for (auto& a : agents_) {
            a->kill();
        }
        for (int i = 0; i < static_cast<int>(agents_.size()); ++i) {
            if (HasFailure()) {
                // The end of the log: where a failure shows.
                const std::string log = read_text(log_path(i));
                std::cerr << "--- agent " << i << " log (last 12000 bytes):\n"
                          << log.substr(log.size() > 12000 ? log.size() - 12000 : 0);
            }
            unlink_segment(segment(i));
        }
        pg_.reset();
        db_.reset();
        redis_.kill();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string segment(int i) const { return unique_segment(tag_ + "-" + std::to_string(i)); }
    fs::path log_path(int i) const { return dir_ / ("agent" + std::to_string(i) + ".log"); }

    std::vector<std::string> agent_env(int i, std::uint16_t redis_port) const {
        return {"REDIS_HOST=127.0.0.1",
                "REDIS_PORT=" + std::to_string(redis_port),
                "POD_NAME=pod" + std::to_string(i),
                "YUXI_CONFIG_RELAY_LEASE_TTL=1s",
                "YUXI_CONFIG_SAFETY_POLL=500ms",
                std::string("YUXI_CONFIG_SIGNING_KEY=") + kTestSigningKey};
    }

    // Starts agent i (a new one, or again after a stop) with `extra` environment.
    Agent& start_agent(int i, const std::vector<std::string>& extra = {},
                       const std::string& url = {}) {
        while (static_cast<int>(agents_.size()) <= i) {
            agents_.push_back(std::make_unique<Agent>());
        }
        while (static_cast<int>(http_ports_.size()) <= i) {
            // Only where a test reads /metrics: a port picked here is free now, not
            // when the agent binds it. Distinct within the test at least.
            std::uint16_t port = 0;
            while (with_http_ && (port == 0 || std::find(http_ports_.begin(), http_ports_.end(),
                                                         port) != http_ports_.end())) {
                port = free_port();
            }
            http_ports_.push_back(port);
        }
        std::vector<std::string> env = agent_env(i, redis_.port());

        env.insert(env.end(), extra.begin(), extra.end());
        // A flag: the harness's own YUXI_CONFIG_HTTP comes first in the environment.
        agents_[i]->start(url.empty() ? db_->url() : url, segment(i), log_path(i),
                          {"--http", "127.0.0.1:" + std::to_string(http_ports_[i])}, env);
        return *agents_[i];
    }

    Client client(int i, std::chrono::milliseconds timeout = 20s) {
        auto c = open_when_ready(segment(i), timeout);
        if (!c) {
            throw std::runtime_error("no segment " + segment(i));
        }
        return std::move(*c);
    }

    // The agents whose log's last lease event is "taken".
    std::vector<int> leaders() const {
        std::vector<int> out;
        for (int i = 0; i < static_cast<int>(agents_.size()); ++i) {
            if (!agents_[i]->running()) {
                continue;
            }
            const std::string log = agents_[i]->log();
            const auto taken = log.rfind("relay lease taken");
            const auto lost = log.rfind("relay lease lost");
            if (taken != std::string::npos && (lost == std::string::npos || lost < taken)) {
                out.push_back(i);
            }
        }
        return out;
    }

    // The one agent that holds the lease, or -1 (none, or a hand-over in progress).
    int leader() const {
        const auto l = leaders();
        return l.size() == 1 ? l[0] : -1;
    }

    // Agent 0 as the relay, then agent 1 as its follower, in step with the database.
    Client start_relay_and_follower() {
        start_agent(0);
        (void)client(0);
        EXPECT_TRUE(eventually([&] { return leader() == 0; }));
        start_agent(1);
        Client follower = client(1);
        expect_converged(follower, *pg_);
        return follower;
    }

    int agent_connections() {
        return std::stoi(pg_->scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'yuxi-config-agent' "
            "AND datname = current_database()"));
    }

    // Role → pod, from the agents hash (a role held by two pods keeps one of them, and
    // the size tells).
    std::map<std::string, std::string> roles() const {
        std::map<std::string, std::string> out;
        auto r = redis().command({"HGETALL", "yuxi:config:agents"});
        std::size_t seen = 0;
        for (std::size_t k = 0; k + 1 < r->elements; k += 2, ++seen) {
            const std::string pod(r->element[k]->str, r->element[k]->len);
            const std::string v(r->element[k + 1]->str, r->element[k + 1]->len);
            for (const char* role : {"relay", "follower", "direct"}) {
                if (v.find("\"role\":\"" + std::string(role) + "\"") != std::string::npos) {
                    out[role] = pod;
                }
            }
        }
        if (out.size() != seen) {
            out.clear();  // two pods in one role
        }
        return out;
    }

    detail::RedisConnection redis() const { return detail::RedisConnection(redis_.endpoint()); }

    void write(const std::string& key, const std::string& json) {
        pg_->exec(
            "INSERT INTO system_configs (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO "
            "UPDATE SET value = EXCLUDED.value",
            {key, json});
    }

    PrivateRedis redis_;
    fs::path dir_;
    std::string tag_;
    std::unique_ptr<TestDatabase> db_;
    std::unique_ptr<Pg> pg_;
    std::vector<std::unique_ptr<Agent>> agents_;
    std::vector<std::uint16_t> http_ports_;  // 0: no HTTP server
    bool with_http_ = false;
};

}  // namespace yuxi::config::test
