// The injector's flags and variables, the value checks they share with the annotations,
// and the metrics' exposition (read by the strict parser of support/exposition_parser.hpp).
#include <gtest/gtest.h>

#include <vector>

#include "injector_test_support.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "support/exposition_parser.hpp"

namespace yuxi::config::injector::test {
namespace {

using yuxi::config::test::Exposition;
using yuxi::config::test::parse_exposition;

Options parse(std::vector<std::string_view> args, const Environment& env = {}) {
    std::vector<std::string_view> all = {"--tls-cert", "c.pem", "--tls-key", "k.pem"};
    all.insert(all.end(), args.begin(), args.end());
    return parse_options(all, env, tmpl());
}

std::string error_of(std::vector<std::string_view> args, const Environment& env = {}) {
    try {
        (void)parse_options(args, env, tmpl());
    } catch (const OptionsError& e) {
        return e.what();
    }
    return "<no error>";
}

TEST(InjectorOptions, Defaults) {
    const Options o = parse({});
    EXPECT_EQ(o.listen, (ListenAddress{"127.0.0.1", 8443}));
    EXPECT_EQ(o.tls_cert, "c.pem");
    EXPECT_EQ(o.tls_key, "k.pem");
    EXPECT_EQ(o.tls_reload_interval, std::chrono::seconds(10));
    EXPECT_EQ(o.metrics_listen.port, 0);
    EXPECT_EQ(o.request_timeout, std::chrono::seconds(10));
    EXPECT_EQ(o.max_request_bytes, 2u << 20);
    EXPECT_EQ(o.max_connections, 64u);
    EXPECT_EQ(o.sidecar.image, "yuxi-config:" + std::string(version()));
    EXPECT_EQ(o.sidecar.env, tmpl().agent_env);
    EXPECT_EQ(o.sidecar.secret, "yuxi-config-secrets");
    EXPECT_TRUE(o.sidecar.native);
}

TEST(InjectorOptions, FlagsWinOverVariables) {
    const Environment env = {{"YUXI_INJECTOR_LISTEN", "0.0.0.0:9443"},
                             {"YUXI_INJECTOR_AGENT_IMAGE", "from-env:1"},
                             {"YUXI_INJECTOR_TLS_RELOAD_INTERVAL", "2m"}};
    const Options a = parse({}, env);
    EXPECT_EQ(a.listen, (ListenAddress{"0.0.0.0", 9443}));
    EXPECT_EQ(a.sidecar.image, "from-env:1");
    EXPECT_EQ(a.tls_reload_interval, std::chrono::minutes(2));
    const Options b = parse({"--listen=[::]:443", "--agent-image", "from-flag:2"}, env);
    EXPECT_EQ(b.listen, (ListenAddress{"::", 443}));
    EXPECT_EQ(b.sidecar.image, "from-flag:2");
}

TEST(InjectorOptions, TheSidecarsDefaultsForEveryPod) {
    const Environment env = {{"YUXI_INJECTOR_AGENT_ENV_REDIS_HOST", "redis.infra.svc"},
                             {"YUXI_INJECTOR_AGENT_ENV_REDIS_SENTINELS", "a:26379,b:26379"}};
    const Options o =
        parse({"--agent-env", "LOG_LEVEL=warn", "--agent-env=NEW_ONE=x", "--agent-secret",
               "team-secrets", "--agent-memory-limit", "256Mi", "--native-sidecar", "false"},
              env);
    EXPECT_EQ(o.sidecar.env_value("REDIS_HOST"), "redis.infra.svc");
    EXPECT_EQ(o.sidecar.env_value("REDIS_SENTINELS"), "a:26379,b:26379");
    EXPECT_EQ(o.sidecar.env_value("LOG_LEVEL"), "warn");
    EXPECT_EQ(o.sidecar.env_value("NEW_ONE"), "x");
    EXPECT_EQ(o.sidecar.env.back().name, "NEW_ONE");  // appended after the template's
    EXPECT_EQ(o.sidecar.secret, "team-secrets");
    EXPECT_EQ(o.sidecar.resources.memory_limit, "256Mi");
    EXPECT_EQ(o.sidecar.resources.memory_request, "32Mi");
    EXPECT_FALSE(o.sidecar.native);
}

TEST(InjectorOptions, WrongSettingsAreNamed) {
    const std::vector<std::string_view> tls = {"--tls-cert", "c", "--tls-key", "k"};
    const auto with = [&](std::vector<std::string_view> more) {
        std::vector<std::string_view> all = tls;
        all.insert(all.end(), more.begin(), more.end());
        return error_of(all);
    };
    EXPECT_EQ(error_of({"--bogus"}), "unknown flag '--bogus'");
    EXPECT_EQ(error_of({"serve"}), "unexpected argument 'serve'");
    EXPECT_EQ(error_of({"--tls-key", "k"}),
              "--tls-cert is required: the API server calls webhooks over HTTPS");
    EXPECT_EQ(error_of({"--tls-cert", "c"}),
              "--tls-key is required: the API server calls webhooks over HTTPS");
    EXPECT_EQ(with({"--listen"}), "--listen needs a value");
    EXPECT_EQ(with({"--help=yes"}), "--help takes no value");
    EXPECT_EQ(with({"--listen", "8443"}), "--listen: '8443' is not HOST:PORT");
    EXPECT_EQ(with({"--listen", "::1:8443"}),
              "--listen: '::1:8443': write an IPv6 address in brackets, as [::1]:8443");
    EXPECT_EQ(with({"--listen", "0.0.0.0:0"}), "--listen: the webhook needs a port (1 to 65535)");
    EXPECT_EQ(with({"--listen", "0.0.0.0:70000"}),
              "--listen: '0.0.0.0:70000': the port must be a number from 0 to 65535");
    EXPECT_EQ(with({"--tls-reload-interval", "10ms"}),
              "--tls-reload-interval: must be from 100ms to 1h");
    EXPECT_EQ(with({"--request-timeout", "soon"}),
              "--request-timeout: 'soon' is not a duration (e.g. 10s, 500ms, 2m)");
    EXPECT_EQ(with({"--max-request-bytes", "1K"}),
              "--max-request-bytes: must be from 4KiB to 64MiB");
    EXPECT_EQ(with({"--max-request-bytes", "2GB"}),
              "--max-request-bytes: '2GB': unknown unit 'GB' (K, KiB, M, MiB)");
    EXPECT_EQ(with({"--max-connections", "0"}),
              "--max-connections: '0' is not a number from 1 to 10000");
    EXPECT_EQ(with({"--log-format", "xml"}),
              "--log-format: 'xml' is not a log format (human or json)");
    EXPECT_EQ(
        with({"--agent-image", "a b"}),
        "--agent-image: \"a b\" is not an image reference (letters, digits and . _ - / : @ only)");
    EXPECT_TRUE(
        with({"--agent-secret", "Team_Secrets"})
            .starts_with("--agent-secret: \"Team_Secrets\" is not a Kubernetes object name"));
    EXPECT_EQ(with({"--agent-cpu-request", "1"}).substr(0, 40),
              "the agent's cpu request 1 is above its l");
    EXPECT_EQ(with({"--native-sidecar", "yes"}),
              "--native-sidecar: \"yes\" must be \"true\" or \"false\"");
    EXPECT_EQ(with({"--agent-env", "NOEQUALS"}), "--agent-env: 'NOEQUALS' is not NAME=VALUE");
    EXPECT_EQ(with({"--agent-env", "CONFIG_MODE=redis"}),
              "--agent-env: CONFIG_MODE=\"redis\" is not a mode of the agent (database or file)");
    EXPECT_EQ(with({"--agent-env", "POD_NAME=x"}),
              "--agent-env: \"POD_NAME\" is set by the injector from the pod's name");
    EXPECT_EQ(with({"--agent-env", "1X=y"}),
              "--agent-env: \"1X\" is not an environment variable name");
}

TEST(InjectorOptions, SecretsNeverBecomeLiteralVariables) {
    for (const char* name : {"DATABASE_URL", "REDIS_PASSWORD", "YUXI_CONFIG_SIGNING_KEY"}) {
        const std::string arg = std::string(name) + "=postgresql://u:pw@db/x";
        const std::string e = error_of({"--tls-cert", "c", "--tls-key", "k", "--agent-env", arg});
        EXPECT_NE(e.find("is a secret: it belongs in the agent's Secret"), std::string::npos) << e;
        EXPECT_EQ(e.find("pw@"), std::string::npos) << "the value must not be echoed: " << e;
    }
    const std::string e = error_of({"--tls-cert", "c", "--tls-key", "k"},
                                   {{"YUXI_INJECTOR_AGENT_ENV_REDIS_PASSWORD", "pw"}});
    EXPECT_NE(e.find("YUXI_INJECTOR_AGENT_ENV_REDIS_PASSWORD: \"REDIS_PASSWORD\" is a secret"),
              std::string::npos)
        << e;
}

TEST(InjectorOptions, HelpAndVersionNeedNothingElse) {
    EXPECT_TRUE(parse_options(std::vector<std::string_view>{"--help"}, {}, tmpl()).help);
    EXPECT_TRUE(parse_options(std::vector<std::string_view>{"-h"}, {}, tmpl()).help);
    EXPECT_TRUE(parse_options(std::vector<std::string_view>{"--version"}, {}, tmpl()).version);
    const std::string u = usage("yuxi-config-injector");
    for (const char* flag : {"--listen",
                             "--tls-cert",
                             "--tls-key",
                             "--tls-reload-interval",
                             "--metrics-listen",
                             "--request-timeout",
                             "--max-request-bytes",
                             "--max-connections",
                             "--log-level",
                             "--log-format",
                             "--agent-image",
                             "--agent-env",
                             "--agent-secret",
                             "--agent-cpu-request",
                             "--agent-cpu-limit",
                             "--agent-memory-request",
                             "--agent-memory-limit",
                             "--native-sidecar",
                             "--help",
                             "--version"}) {
        EXPECT_NE(u.find(flag), std::string::npos) << flag;
    }
}

TEST(InjectorOptions, DurationsSizesAndQuantities) {
    EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
    EXPECT_EQ(parse_duration("3"), std::chrono::seconds(3));
    EXPECT_EQ(parse_duration("1h"), std::chrono::hours(1));
    EXPECT_THROW((void)parse_duration("1.5s"), OptionsError);
    EXPECT_EQ(parse_byte_size("512KiB"), 512u * 1024);
    EXPECT_EQ(parse_byte_size("3M"), 3u << 20);
    EXPECT_THROW((void)parse_byte_size("-1"), OptionsError);
    const auto q = [](std::string_view s) {
        return static_cast<double>(parse_quantity(s).value());
    };
    EXPECT_DOUBLE_EQ(q("100m"), 0.1);
    EXPECT_DOUBLE_EQ(q("2"), 2.0);
    EXPECT_DOUBLE_EQ(q("1Gi"), 1073741824.0);
    EXPECT_DOUBLE_EQ(q("1e3"), 1000.0);
    EXPECT_DOUBLE_EQ(q(".5"), 0.5);
    EXPECT_DOUBLE_EQ(q("1.5M"), 1.5e6);
    for (const char* bad :
         {"", "m", "1.2.3", "1Gb", "1 Gi", "-1", "+1", "1e", "1e1234", "Infinity"}) {
        EXPECT_FALSE(parse_quantity(bad)) << bad;
    }
}

TEST(InjectorMetrics, EveryFamilyIsThereFromTheStartAndParsesStrictly) {
    Metrics m;
    const Exposition e = parse_exposition(m.render());
    for (const char* family :
         {"yuxi_config_injector_build_info", "yuxi_config_injector_requests_total",
          "yuxi_config_injector_admissions_total", "yuxi_config_injector_patches_total",
          "yuxi_config_injector_refusals_total", "yuxi_config_injector_unchanged_total",
          "yuxi_config_injector_invalid_requests_total",
          "yuxi_config_injector_admission_duration_seconds", "yuxi_config_injector_connections",
          "yuxi_config_injector_connections_at_limit_total",
          "yuxi_config_injector_tls_reloads_total",
          "yuxi_config_injector_tls_certificate_expiry_timestamp_seconds",
          "yuxi_config_injector_exceptions_total"}) {
        EXPECT_TRUE(e.families.contains(family)) << family;
    }
    EXPECT_EQ(e.value("yuxi_config_injector_admissions_total", {{"result", "patched"}}), 0);
    EXPECT_EQ(e.value("yuxi_config_injector_refusals_total", {{"reason", "annotation"}}), 0);
    EXPECT_EQ(e.value("yuxi_config_injector_unchanged_total", {{"reason", "opted_out"}}), 0);
}

TEST(InjectorMetrics, CountsAndTheHistogramFollowEvents) {
    Metrics m;
    m.count_request("mutate", 200);
    m.count_request("mutate", 200);
    m.count_request("healthz", 200);
    m.count_admission("patched", "patched");
    m.count_admission("refused", "conflict");
    m.count_admission("unchanged", "already_injected");
    m.observe_duration(std::chrono::microseconds(80));
    m.observe_duration(std::chrono::milliseconds(3));
    m.observe_duration(std::chrono::seconds(5));
    m.count_tls_reload(true);
    m.set_certificate_expiry(1893456000);
    m.set_connections(3);
    const Exposition e = parse_exposition(m.render());
    EXPECT_EQ(
        e.value("yuxi_config_injector_requests_total", {{"handler", "mutate"}, {"code", "200"}}),
        2);
    EXPECT_EQ(e.value("yuxi_config_injector_patches_total"), 1);
    EXPECT_EQ(e.value("yuxi_config_injector_refusals_total", {{"reason", "conflict"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_injector_unchanged_total", {{"reason", "already_injected"}}), 1);
    constexpr const char* kBucket = "yuxi_config_injector_admission_duration_seconds_bucket";
    EXPECT_EQ(e.value(kBucket, {{"le", "5e-05"}}), 0);
    EXPECT_EQ(e.value(kBucket, {{"le", "0.0001"}}), 1);
    EXPECT_EQ(e.value(kBucket, {{"le", "0.005"}}), 2);
    EXPECT_EQ(e.value(kBucket, {{"le", "1"}}), 2);
    EXPECT_EQ(e.value(kBucket, {{"le", "+Inf"}}), 3);
    EXPECT_EQ(e.value("yuxi_config_injector_admission_duration_seconds_count"), 3);
    EXPECT_EQ(e.value("yuxi_config_injector_tls_reloads_total", {{"result", "ok"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_injector_tls_certificate_expiry_timestamp_seconds"), 1893456000);
    EXPECT_EQ(e.value("yuxi_config_injector_connections"), 3);
}

}  // namespace
}  // namespace yuxi::config::injector::test
