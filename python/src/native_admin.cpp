// yuxi_config._native's writers: the admin library (include/yuxi/config/admin.hpp) for
// Python, one implementation of every write. yuxi_config/admin.py wraps it (values as
// Python objects, async twins); import that, not this.
//
// Every call that reaches PostgreSQL, Redis, the segment or a file releases the GIL, and
// an Admin serializes its calls on its own mutex (it holds one connection), taken after
// the GIL is released so that a thread waiting for it never blocks the interpreter.
#include "native_admin.hpp"

#include <pybind11/stl.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "yuxi/config/admin.hpp"

namespace py = pybind11;

namespace yuxi::config::python {
namespace {

struct ErrorTypes {
    PyObject* error = nullptr;
    PyObject* invalid_argument = nullptr;
    PyObject* conflict = nullptr;
    PyObject* invalid_value = nullptr;
    PyObject* unavailable = nullptr;
    PyObject* wait_timeout = nullptr;
    PyObject* rejected = nullptr;
    PyObject* not_found = nullptr;
};
ErrorTypes g_errors;

PyObject* type_of(AdminError::Kind kind) {
    switch (kind) {
        case AdminError::Kind::usage:
            return g_errors.invalid_argument;
        case AdminError::Kind::conflict:
            return g_errors.conflict;
        case AdminError::Kind::invalid_value:
            return g_errors.invalid_value;
        case AdminError::Kind::unavailable:
            return g_errors.unavailable;
        case AdminError::Kind::timeout:
            return g_errors.wait_timeout;
        case AdminError::Kind::rejected:
            return g_errors.rejected;
        case AdminError::Kind::not_found:
            return g_errors.not_found;
    }
    return g_errors.error;
}

py::dict agent_dict(const AgentStatus& a) {
    py::dict d;
    d["pod"] = a.pod;
    d["role"] = a.role;
    d["state"] = a.state;
    d["segment"] = a.segment;
    d["revision"] = a.revision;
    d["heartbeat_age"] = static_cast<double>(a.heartbeat_age_ms) / 1000.0;
    d["live"] = a.live;
    py::list rejected;
    for (const AgentRejection& r : a.rejected) {
        py::dict x;
        x["revision"] = r.revision;
        x["namespace"] = r.ns;
        x["key"] = r.key;
        x["reason"] = r.reason;
        rejected.append(x);
    }
    d["rejected"] = rejected;
    d["rejected_keys"] = a.rejected_keys;
    return d;
}

// Raises the Python exception of `e`, with its fields as attributes.
void raise(const AdminError& e) {
    PyObject* type = type_of(e.kind());
    py::object exc = py::reinterpret_steal<py::object>(PyObject_CallFunction(type, "s", e.what()));
    if (!exc) {
        return;
    }
    exc.attr("kind") = std::string(to_string(e.kind()));
    if (const auto* c = dynamic_cast<const ConflictError*>(&e)) {
        exc.attr("key") = c->key();
        exc.attr("revision") = c->revision();
    } else if (const auto* v = dynamic_cast<const InvalidValueError*>(&e)) {
        exc.attr("key") = v->key();
        exc.attr("path") = v->path();
        exc.attr("reason") = v->reason();
    } else if (const auto* w = dynamic_cast<const WaitError*>(&e)) {
        exc.attr("revision") = w->revision();
        py::list pods;
        for (const AgentStatus& a : w->agents()) {
            pods.append(agent_dict(a));
        }
        exc.attr("pods") = pods;
    }
    PyErr_SetObject(type, exc.ptr());
}

std::chrono::milliseconds millis(double seconds) {
    if (!(seconds >= 0) || seconds > 1e9) {
        throw py::value_error("a timeout is a number of seconds from 0 to 1e9");
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

WriteOptions options(bool metadata, std::optional<std::string> category,
                     std::optional<std::uint64_t> if_revision) {
    WriteOptions o;
    o.metadata = metadata;
    o.category = std::move(category);
    o.if_revision = if_revision;
    return o;
}

py::tuple result(const WriteResult& r) {
    return py::make_tuple(r.revision, r.changed);
}

class PyAdmin {
  public:
    PyAdmin(std::string dsn, std::string segment, std::optional<std::string> redis_host,
            std::optional<int> redis_port, std::optional<std::string> redis_password,
            std::optional<int> redis_db, double stale_after) {
        AdminOptions o;
        o.database_url = std::move(dsn);
        o.segment = std::move(segment);
        o.stale_after = millis(stale_after);
        o.application_name = "yuxi-config-python";
        if (redis_host || redis_port || redis_password || redis_db) {
            RedisEndpoint e = RedisEndpoint::from_env();
            if (redis_host) {
                e.host = *redis_host;
            }
            if (redis_port) {
                if (*redis_port < 1 || *redis_port > 65535) {
                    throw py::value_error("redis_port must be 1 to 65535");
                }
                e.port = static_cast<std::uint16_t>(*redis_port);
            }
            if (redis_password) {
                e.password = *redis_password;
            }
            if (redis_db) {
                e.db = *redis_db;
            }
            o.redis = std::move(e);
        }
        py::gil_scoped_release unlocked;
        admin_ = std::make_unique<Admin>(std::move(o));
    }

    // `fn(admin)` without the GIL, one call at a time.
    template <class Fn>
    auto run(Fn&& fn) {
        py::gil_scoped_release unlocked;
        const std::lock_guard lock(mutex_);
        return fn(*admin_);
    }

  private:
    std::mutex mutex_;
    std::unique_ptr<Admin> admin_;
};

using WriteTuple = std::tuple<std::string, std::optional<std::string>, bool,
                              std::optional<std::string>, std::optional<std::uint64_t>>;

void bind_admin_class(py::module_& m) {
    py::class_<PyAdmin>(m, "Admin")
        .def(py::init<std::string, std::string, std::optional<std::string>, std::optional<int>,
                      std::optional<std::string>, std::optional<int>, double>(),
             py::arg("dsn") = "", py::arg("segment") = "", py::arg("redis_host") = py::none(),
             py::arg("redis_port") = py::none(), py::arg("redis_password") = py::none(),
             py::arg("redis_db") = py::none(), py::arg("stale_after") = 10.0)
        .def(
            "set",
            [](PyAdmin& a, const std::string& key, const std::string& json, bool metadata,
               std::optional<std::string> category, std::optional<std::uint64_t> if_revision) {
                return result(a.run([&](Admin& x) {
                    return x.set(key, json, options(metadata, category, if_revision));
                }));
            },
            py::arg("key"), py::arg("json"), py::arg("metadata") = false,
            py::arg("category") = py::none(), py::arg("if_revision") = py::none())
        .def(
            "set_many",
            [](PyAdmin& a, const std::vector<WriteTuple>& items) {
                std::vector<Write> writes;
                for (const auto& [key, json, metadata, category, if_revision] : items) {
                    writes.push_back({key, json, options(metadata, category, if_revision)});
                }
                return result(a.run([&](Admin& x) { return x.set_many(writes); }));
            },
            py::arg("items"))
        .def(
            "remove",
            [](PyAdmin& a, const std::string& key, bool metadata,
               std::optional<std::uint64_t> if_revision) {
                return result(a.run([&](Admin& x) {
                    return x.remove(key, options(metadata, std::nullopt, if_revision));
                }));
            },
            py::arg("key"), py::arg("metadata") = false, py::arg("if_revision") = py::none())
        .def(
            "get",
            [](PyAdmin& a, const std::string& key, bool metadata) -> py::object {
                const auto v = a.run([&](Admin& x) { return x.get(key, metadata); });
                if (!v) {
                    return py::none();
                }
                return py::make_tuple(v->value, v->category, v->revision);
            },
            py::arg("key"), py::arg("metadata") = false)
        .def(
            "history",
            [](PyAdmin& a, const std::string& key, bool metadata, std::size_t limit) {
                const auto rows = a.run([&](Admin& x) { return x.history(key, metadata, limit); });
                py::list out;
                for (const HistoryEntry& h : rows) {
                    py::dict d;
                    d["revision"] = h.revision;
                    d["changed_at"] = h.changed_at;
                    d["changed_by"] = h.changed_by;
                    d["op"] = std::string(1, h.op);
                    d["old_value"] = h.old_value;
                    d["new_value"] = h.new_value;
                    d["category"] = h.category;
                    out.append(d);
                }
                return out;
            },
            py::arg("key"), py::arg("metadata") = false, py::arg("limit") = 20)
        .def(
            "rollback",
            [](PyAdmin& a, std::uint64_t revision, std::optional<std::string> key, bool metadata) {
                const RollbackResult r = a.run([&](Admin& x) {
                    return x.rollback_to(
                        revision, key ? std::optional(std::pair(*key, metadata)) : std::nullopt);
                });
                py::list keys;
                for (const RolledBack& k : r.keys) {
                    keys.append(py::make_tuple(k.ns, k.key, k.deleted));
                }
                return py::make_tuple(r.revision, r.changed, keys);
            },
            py::arg("revision"), py::arg("key") = py::none(), py::arg("metadata") = false)
        .def(
            "wait",
            [](PyAdmin& a, std::uint64_t revision, const std::string& scope, double timeout) {
                if (scope != "local" && scope != "fleet") {
                    throw py::value_error("scope is \"local\" or \"fleet\", not '" + scope + "'");
                }
                const auto t = millis(timeout);
                a.run([&](Admin& x) {
                    x.wait(revision, scope == "fleet" ? WaitScope::fleet : WaitScope::local, t);
                    return 0;
                });
            },
            py::arg("revision"), py::arg("scope") = "local", py::arg("timeout") = 10.0)
        .def("revision", [](PyAdmin& a) { return a.run([](Admin& x) { return x.revision(); }); })
        .def(
            "check_value",
            [](PyAdmin& a, const std::string& key, const std::string& json, bool metadata) {
                a.run([&](Admin& x) {
                    x.check_value(key, json, metadata);
                    return 0;
                });
            },
            py::arg("key"), py::arg("json"), py::arg("metadata") = false)
        .def(
            "set_value_schema",
            [](PyAdmin& a, const std::string& pattern, const std::string& schema, bool metadata,
               bool force) {
                a.run([&](Admin& x) {
                    x.set_value_schema(pattern, schema, metadata, force);
                    return 0;
                });
            },
            py::arg("pattern"), py::arg("schema"), py::arg("metadata") = false,
            py::arg("force") = false)
        .def(
            "value_schema",
            [](PyAdmin& a, const std::string& pattern, bool metadata) -> py::object {
                const auto s = a.run([&](Admin& x) { return x.value_schema(pattern, metadata); });
                return s ? py::object(py::str(s->schema)) : py::object(py::none());
            },
            py::arg("pattern"), py::arg("metadata") = false)
        .def("value_schemas",
             [](PyAdmin& a) {
                 const auto all = a.run([](Admin& x) { return x.value_schemas(); });
                 py::list out;
                 for (const ValueSchemaInfo& s : all) {
                     py::dict d;
                     d["namespace"] = s.metadata ? "metadata" : "config";
                     d["pattern"] = s.pattern;
                     d["schema"] = s.schema;
                     d["updated_by"] = s.updated_by;
                     d["updated_at"] = s.updated_at;
                     out.append(d);
                 }
                 return out;
             })
        .def(
            "remove_value_schema",
            [](PyAdmin& a, const std::string& pattern, bool metadata) {
                return a.run([&](Admin& x) { return x.remove_value_schema(pattern, metadata); });
            },
            py::arg("pattern"), py::arg("metadata") = false)
        .def(
            "import_value_schemas",
            [](PyAdmin& a, const std::string& model_schema, bool force) {
                return a.run([&](Admin& x) { return x.import_value_schemas(model_schema, force); });
            },
            py::arg("model_schema"), py::arg("force") = false)
        .def("agents",
             [](PyAdmin& a) {
                 const auto all = a.run([](Admin& x) { return x.fleet().agents(); });
                 py::list out;
                 for (const AgentStatus& s : all) {
                     out.append(agent_dict(s));
                 }
                 return out;
             })
        .def_property_readonly(
            "database", [](PyAdmin& a) { return a.run([](Admin& x) { return x.database(); }); });
}

void bind_file_writer(py::module_& m) {
    py::class_<ConfigFileWriter>(m, "ConfigFileWriter")
        .def(py::init([](std::string path, std::string schema_file) {
                 py::gil_scoped_release unlocked;
                 return std::make_unique<ConfigFileWriter>(std::move(path), std::move(schema_file));
             }),
             py::arg("path"), py::arg("value_schema_file") = "")
        .def(
            "apply",
            [](ConfigFileWriter& w, const std::vector<FileWrite>& writes) {
                py::gil_scoped_release unlocked;
                return w.apply(writes);
            },
            py::arg("writes"))
        .def("read",
             [](const ConfigFileWriter& w) {
                 py::gil_scoped_release unlocked;
                 return w.read();
             })
        .def_property_readonly("path", &ConfigFileWriter::path);
}

PyObject* new_error(const char* name, PyObject* base, const char* doc) {
    PyObject* t = PyErr_NewExceptionWithDoc(name, doc, base, nullptr);
    if (t == nullptr) {
        throw py::error_already_set();
    }
    return t;
}

}  // namespace

void bind_admin(py::module_& m) {
    g_errors.error =
        new_error("yuxi_config._native.Error", PyExc_RuntimeError,
                  "A write or a wait failed; `kind` says why (usage, conflict, invalid_value, "
                  "unavailable, timeout, rejected, not_found).");
    py::tuple bases = py::make_tuple(py::handle(g_errors.error), py::handle(PyExc_ValueError));
    g_errors.invalid_argument = new_error("yuxi_config._native.InvalidArgument", bases.ptr(),
                                          "A bad argument: a key, JSON, a schema.");
    g_errors.conflict = new_error("yuxi_config._native.Conflict", g_errors.error,
                                  "Compare-and-set: the key changed since if_revision.");
    g_errors.invalid_value = new_error("yuxi_config._native.InvalidValue", g_errors.error,
                                       "The value breaks its key's JSON Schema (.path, .reason).");
    g_errors.unavailable = new_error("yuxi_config._native.Unavailable", g_errors.error,
                                     "PostgreSQL or Redis cannot be reached, or refused.");
    g_errors.wait_timeout = new_error("yuxi_config._native.WaitTimeout", g_errors.error,
                                      "A wait ran out; the write is committed.");
    g_errors.rejected = new_error("yuxi_config._native.Rejected", g_errors.error,
                                  "Agents refused a value up to the revision (.pods).");
    g_errors.not_found =
        new_error("yuxi_config._native.NotFound", g_errors.error, "No such key or revision.");
    m.attr("Error") = py::handle(g_errors.error);
    m.attr("InvalidArgument") = py::handle(g_errors.invalid_argument);
    m.attr("Conflict") = py::handle(g_errors.conflict);
    m.attr("InvalidValue") = py::handle(g_errors.invalid_value);
    m.attr("Unavailable") = py::handle(g_errors.unavailable);
    m.attr("WaitTimeout") = py::handle(g_errors.wait_timeout);
    m.attr("Rejected") = py::handle(g_errors.rejected);
    m.attr("NotFound") = py::handle(g_errors.not_found);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) {
                std::rethrow_exception(p);
            }
        } catch (const AdminError& e) {
            raise(e);
        }
    });
    bind_admin_class(m);
    bind_file_writer(m);
}

}  // namespace yuxi::config::python
