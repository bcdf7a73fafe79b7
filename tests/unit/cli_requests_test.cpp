// yuxi-configctl's typed requests (cli/requests.hpp): each command's flags parsed once, with
// the checks the option table cannot express.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/requests.hpp"

namespace yuxi::config::cli {
namespace {

Request request(std::vector<std::string> argv) {
    return to_request(parse(argv));
}

std::string refusal(std::vector<std::string> argv) {
    try {
        (void)request(std::move(argv));
    } catch (const UsageError& e) {
        return e.what();
    }
    return "";
}

TEST(CliRequests, SetCarriesEveryFlagTyped) {
    const auto r = std::get<SetRequest>(request(
        {"--segment", "seg", "set", "k", "-5", "--if-revision", "7", "--wait-all", "--timeout",
         "2.5s", "--redis-port", "6380", "--stale-after", "3", "--category", "models", "--json"}));
    EXPECT_EQ(r.key.key, "k");
    EXPECT_FALSE(r.key.metadata);
    EXPECT_EQ(r.value, "-5");
    EXPECT_EQ(r.if_revision, 7u);
    EXPECT_EQ(r.category, "models");
    EXPECT_TRUE(r.wait.all);
    EXPECT_FALSE(r.wait.local);
    EXPECT_EQ(r.wait.timeout, 2.5);
    EXPECT_EQ(r.wait.stale_after, 3.0);
    EXPECT_EQ(r.wait.redis.port, 6380);
    EXPECT_EQ(r.db.segment, "seg");
    EXPECT_TRUE(r.json);
}

TEST(CliRequests, ValuesAreCheckedAtTheEdge) {
    EXPECT_NE(refusal({"set", "k", "1", "--if-revision", "-1"}).find("--if-revision"),
              std::string::npos);
    EXPECT_NE(refusal({"set", "k", "1", "--redis-port", "70000"}).find("1 to 65535"),
              std::string::npos);
    EXPECT_NE(refusal({"set", "k", "1", "--timeout", "3"}).find("goes with --wait"),
              std::string::npos);
    EXPECT_NE(refusal({"set", "k", "1", "--metadata", "--category", "c"}).find("metadata"),
              std::string::npos);
    EXPECT_NE(refusal({"get", "k", "--raw", "--json"}).find("cannot be combined"),
              std::string::npos);
    EXPECT_NE(refusal({"rollback", "k"}).find("--to-revision"), std::string::npos);
    EXPECT_NE(refusal({"log", "trim"}).find("--keep"), std::string::npos);
    EXPECT_NE(refusal({"log", "status", "--keep", "3"}).find("log trim"), std::string::npos);
    EXPECT_NE(refusal({"schema", "drop"}).find("unknown 'schema' subcommand"), std::string::npos);
    EXPECT_NE(refusal({"migrate"}).find("--config-file"), std::string::npos);
    EXPECT_NE(refusal({"migrate", "--metadata", "x"}).find("NAME=PATH"), std::string::npos);
    EXPECT_NE(refusal({"lock", "n", "--ttl", "0", "--", "true"}).find("0.01"), std::string::npos);
    EXPECT_NE(refusal({"watch", "k", "--count", "0"}).find("positive"), std::string::npos);
    EXPECT_NE(refusal({"value-schema", "set", "p"}).find("usage"), std::string::npos);
    EXPECT_NE(refusal({"value-schema", "list", "--force"}).find("--force"), std::string::npos);
    EXPECT_NE(refusal({"wait", "x"}).find("REVISION"), std::string::npos);
}

TEST(CliRequests, EachCommandBecomesItsRequest) {
    EXPECT_TRUE(std::holds_alternative<WaitRequest>(request({"wait", "12", "--all"})));
    const auto w = std::get<WaitRequest>(request({"wait", "12", "--all"}));
    EXPECT_EQ(w.revision, 12u);
    EXPECT_TRUE(w.wait.all);
    const auto v =
        std::get<ValueSchemaRequest>(request({"value-schema", "set", "model_*", "f.json"}));
    EXPECT_EQ(v.op, ValueSchemaRequest::Op::set);
    EXPECT_EQ(v.pattern, "model_*");
    EXPECT_EQ(v.file, "f.json");
    const auto m = std::get<MigrateRequest>(
        request({"migrate", "--config-file", "a.toml", "--metadata", "g=m.json", "--dry-run"}));
    ASSERT_EQ(m.metadata.size(), 1u);
    EXPECT_EQ(m.metadata[0].name, "g");
    EXPECT_EQ(m.metadata[0].path, "m.json");
    EXPECT_TRUE(m.dry_run);
    const auto l =
        std::get<LockRequest>(request({"lock", "job", "--wait", "1", "--", "sh", "-c", "x"}));
    EXPECT_EQ(l.command, (std::vector<std::string>{"sh", "-c", "x"}));
    EXPECT_EQ(l.wait, 1.0);
    const auto s = std::get<StatusRequest>(request({"health", "--max-age", "2"}));
    EXPECT_TRUE(s.probe);
    EXPECT_EQ(s.max_age, 2.0);
}

}  // namespace
}  // namespace yuxi::config::cli
