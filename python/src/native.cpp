// yuxi_config._native: the C++ client for Python. The Python package (yuxi_config/
// __init__.py) wraps it; import that, not this.
//
// Decoded values are built from the scalar the agent stored beside the text (bool, int,
// str) or by json.loads, cached per key and validated by the revision of the entry that
// holds them: entries are immutable and a key's entries have distinct revisions (also
// across compaction and agent restarts), so an unchanged entry revision means an
// unchanged value. While the segment's revision has not moved since a record was last
// validated, a get is a dict lookup and two loads: the hot `get` is a plain CPython
// FASTCALL function rather than a pybind11 method, whose dispatch would cost more than
// the whole lookup.
#include <Python.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <string_view>

#include "yuxi/config/client.hpp"
#ifdef YUXI_CONFIG_HAVE_LOCK
#include "yuxi/config/lock.hpp"
#endif
#ifdef YUXI_CONFIG_HAVE_ADMIN
#include "native_admin.hpp"
#endif

namespace py = pybind11;

namespace yuxi::config::python {
namespace {

PyObject* segment_error_type = nullptr;  // yuxi_config._native.SegmentError
PyObject* json_loads = nullptr;          // json.loads

const char* kind_name(SegmentError::Kind kind) {
    switch (kind) {
        case SegmentError::Kind::absent:
            return "absent";
        case SegmentError::Kind::permission:
            return "permission";
        case SegmentError::Kind::incompatible:
            return "incompatible";
        case SegmentError::Kind::corrupt:
            return "corrupt";
        case SegmentError::Kind::invalid_name:
            return "invalid_name";
        case SegmentError::Kind::system:
            return "system";
    }
    return "system";
}

// Raises `type(message)` with a `kind` attribute: the Python face of the C++ error kinds.
void raise_with_kind(PyObject* type, const char* message, const char* kind) {
    PyObject* exc = PyObject_CallFunction(type, "s", message);
    if (exc == nullptr) {
        return;
    }
    PyObject* k = PyUnicode_FromString(kind);
    PyObject_SetAttrString(exc, "kind", k);
    Py_XDECREF(k);
    PyErr_SetObject(type, exc);
    Py_DECREF(exc);
}

void raise_segment_error(const SegmentError& e) {
    raise_with_kind(segment_error_type, e.what(), kind_name(e.kind()));
}

// A cached decoded value: `value` is the decoding of the entry written at `entry_rev`
// (0: the key was absent), known current at segment revision `checked_rev`.
struct CacheRecord {
    PyObject_HEAD std::uint64_t checked_rev;
    std::uint64_t entry_rev;
    PyObject* value;  // owned; Py_None when absent
};

void cache_record_dealloc(PyObject* self) {
    Py_XDECREF(reinterpret_cast<CacheRecord*>(self)->value);
    Py_TYPE(self)->tp_free(self);
}

PyTypeObject cache_record_type = [] {
    PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
    t.tp_name = "yuxi_config._native._CacheRecord";
    t.tp_basicsize = sizeof(CacheRecord);
    t.tp_dealloc = cache_record_dealloc;
    t.tp_flags = Py_TPFLAGS_DEFAULT;
    return t;
}();

// Decodes JSON text with Python's json module.
PyObject* decode(std::string_view text) {
    PyObject* s = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "strict");
    if (s == nullptr) {
        return nullptr;
    }
    PyObject* out = PyObject_CallOneArg(json_loads, s);
    Py_DECREF(s);
    return out;
}

// The Python object of a value: built from the scalar the agent stored beside the text
// when json.loads would give the same (a bool, an int, a str), without parsing; else
// json.loads of the text. Doubles go through json.loads: an integer literal too large for
// int64 is stored as a double but is an int to Python.
PyObject* decode_value(const Value& v) {
    switch (v.scalar_type()) {
        case layout::ScalarType::boolean:
            return Py_NewRef(*v.as<bool>() ? Py_True : Py_False);
        case layout::ScalarType::integer:
            return PyLong_FromLongLong(*v.as<std::int64_t>());
        case layout::ScalarType::string: {
            const std::string_view s = *v.as<std::string_view>();
            PyObject* out =
                PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "strict");
            if (out != nullptr) {
                return out;
            }
            PyErr_Clear();  // a lone surrogate escape: json.loads knows what to make of it
            break;
        }
        default:
            break;
    }
    return decode(v.data());
}

class NativeClient {
  public:
    explicit NativeClient(const std::string& segment) : client_(Client::open(segment)) {
        caches_[0] = PyDict_New();
        caches_[1] = PyDict_New();
    }
    ~NativeClient() {
        Py_XDECREF(caches_[0]);
        Py_XDECREF(caches_[1]);
    }
    NativeClient(const NativeClient&) = delete;
    NativeClient& operator=(const NativeClient&) = delete;

    const Client& client() const noexcept { return client_; }

    // Returns a new reference to the decoded value of `key` (Py_None if absent), or
    // nullptr with a Python error set.
    PyObject* get(PyObject* key, Namespace ns) {
        PyObject* cache = caches_[static_cast<int>(ns)];
        const std::uint64_t rev = client_.revision();
        PyObject* found = PyDict_GetItemWithError(cache, key);
        if (found != nullptr) {
            auto* rec = reinterpret_cast<CacheRecord*>(found);
            if (rec->checked_rev == rev) {
                return Py_NewRef(rec->value);
            }
        } else if (PyErr_Occurred() != nullptr) {
            return nullptr;
        }
        return refresh(cache, key, reinterpret_cast<CacheRecord*>(found), rev, ns);
    }

    // The decoded value of an entry seen through a snapshot, reusing the cache when
    // the cached record holds the same entry.
    PyObject* decode_entry(PyObject* key, Namespace ns, const Value& v) {
        PyObject* found = PyDict_GetItemWithError(caches_[static_cast<int>(ns)], key);
        if (found != nullptr && reinterpret_cast<CacheRecord*>(found)->entry_rev == v.revision()) {
            return Py_NewRef(reinterpret_cast<CacheRecord*>(found)->value);
        }
        return decode_value(v);
    }

  private:
    PyObject* refresh(PyObject* cache, PyObject* key, CacheRecord* rec, std::uint64_t rev,
                      Namespace ns) {
        Py_ssize_t len = 0;
        const char* utf8 = PyUnicode_AsUTF8AndSize(key, &len);
        if (utf8 == nullptr) {
            return nullptr;
        }
        const auto v = client_.view(std::string_view(utf8, static_cast<std::size_t>(len)), ns);
        const std::uint64_t entry_rev = v ? v->revision() : 0;
        if (rec != nullptr && rec->entry_rev == entry_rev) {
            rec->checked_rev = rev;
            return Py_NewRef(rec->value);
        }
        PyObject* value = v ? decode_value(*v) : Py_NewRef(Py_None);
        if (value == nullptr) {
            return nullptr;
        }
        auto* fresh = PyObject_New(CacheRecord, &cache_record_type);
        if (fresh == nullptr) {
            Py_DECREF(value);
            return nullptr;
        }
        fresh->checked_rev = rev;
        fresh->entry_rev = entry_rev;
        fresh->value = Py_NewRef(value);
        const int rc = PyDict_SetItem(cache, key, reinterpret_cast<PyObject*>(fresh));
        Py_DECREF(fresh);
        if (rc != 0) {
            Py_DECREF(value);
            return nullptr;
        }
        return value;
    }

    Client client_;
    PyObject* caches_[2] = {nullptr, nullptr};  // per namespace: str key -> CacheRecord
};

// The state behind a fast getter: the client and the namespace it reads.
struct Getter {
    std::shared_ptr<NativeClient> client;
    Namespace ns;
};

constexpr const char* kGetterCapsule = "yuxi_config._native.Getter";

// get(key, default=None): the decoded value of `key`, or `default` if it is absent.
PyObject* fast_get(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get(key, default=None) takes 1 or 2 arguments");
        return nullptr;
    }
    if (!PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "key must be str");
        return nullptr;
    }
    auto* g = static_cast<Getter*>(PyCapsule_GetPointer(self, kGetterCapsule));
    if (g == nullptr) {
        return nullptr;
    }
    PyObject* value = g->client->get(args[0], g->ns);
    if (value == Py_None && nargs == 2) {
        Py_DECREF(value);
        return Py_NewRef(args[1]);
    }
    return value;
}

PyMethodDef fast_get_def = {"get", reinterpret_cast<PyCFunction>(reinterpret_cast<void*>(fast_get)),
                            METH_FASTCALL,
                            "get(key, default=None): the decoded JSON value of key, or default."};

py::object make_getter(const std::shared_ptr<NativeClient>& client, bool metadata) {
    auto* g = new Getter{client, metadata ? Namespace::metadata : Namespace::config};
    PyObject* capsule = PyCapsule_New(g, kGetterCapsule, [](PyObject* c) {
        delete static_cast<Getter*>(PyCapsule_GetPointer(c, kGetterCapsule));
    });
    if (capsule == nullptr) {
        delete g;
        throw py::error_already_set();
    }
    PyObject* fn = PyCFunction_New(&fast_get_def, capsule);
    Py_DECREF(capsule);
    if (fn == nullptr) {
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::object>(fn);
}

Namespace ns_of(bool metadata) {
    return metadata ? Namespace::metadata : Namespace::config;
}

// A Python caller's timeout in seconds: negative is 0 (do not wait), NaN is an error,
// and anything past a year is a year (a wait that long is "forever"; converting 1e300 s
// to nanoseconds would overflow).
double checked_seconds(double s) {
    if (std::isnan(s)) {
        throw py::value_error("a timeout must be a number of seconds, not NaN");
    }
    constexpr double kYear = 365.0 * 24 * 3600;
    return s > 0 ? std::min(s, kYear) : 0.0;
}

std::chrono::nanoseconds seconds(double s) {
    return std::chrono::nanoseconds(static_cast<std::int64_t>(checked_seconds(s) * 1e9));
}

// A snapshot plus the client whose cache it shares.
struct NativeSnapshot {
    std::shared_ptr<NativeClient> client;
    Snapshot snap;

    py::object get(const py::str& key, bool metadata) const {
        const Namespace ns = ns_of(metadata);
        const auto v = snap.view(std::string(key), ns);
        if (!v) {
            return py::none();
        }
        PyObject* out = client->decode_entry(key.ptr(), ns, *v);
        if (out == nullptr) {
            throw py::error_already_set();
        }
        return py::reinterpret_steal<py::object>(out);
    }

    py::object get_raw(const std::string& key, bool metadata) const {
        const auto v = snap.get(key, ns_of(metadata));
        return v ? py::object(py::str(*v)) : py::object(py::none());
    }

    py::list keys(const std::string& prefix, bool metadata) const {
        py::list out;
        snap.for_each(ns_of(metadata), prefix,
                      [&](const EntryInfo& e) { out.append(py::str(e.key.data(), e.key.size())); });
        return out;
    }
};

#ifdef YUXI_CONFIG_HAVE_LOCK
PyObject* lock_error_type = nullptr;  // yuxi_config._native.LockError

void raise_lock_error(const char* message, const char* kind) {
    raise_with_kind(lock_error_type, message, kind);
}

std::chrono::milliseconds millis(double s) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(checked_seconds(s) * 1000.0));
}

// The seed's DistributedLock: `with DistributedLock(name, timeout=30):`. `timeout` is
// the lock's TTL in seconds, as in the seed; entering waits up to `wait` seconds
// (default: the TTL) and keeps the lock renewed while the block runs.
class PyLock {
  public:
    PyLock(const std::string& name, double timeout, std::optional<double> wait, bool renew,
           std::optional<std::string> host, std::optional<int> port,
           std::optional<std::string> password, std::optional<int> db,
           std::optional<std::string> username)
        : wait_(wait.value_or(timeout)),
          renew_(renew),
          lock_(endpoint(host, port, password, db, username), name, millis(timeout)) {}

    bool acquire(std::optional<double> wait) {
        const auto limit = millis(wait.value_or(wait_));
        bool ok = false;
        {
            py::gil_scoped_release unlocked;
            ok = lock_.acquire(limit);
            if (ok && renew_) {
                lock_.start_renewal();
            }
        }
        return ok;
    }

    bool try_acquire() {
        py::gil_scoped_release unlocked;
        const bool ok = lock_.try_acquire();
        if (ok && renew_) {
            lock_.start_renewal();
        }
        return ok;
    }

    bool release() {
        py::gil_scoped_release unlocked;
        return lock_.release();
    }

    PyLock& enter() {
        if (!acquire(std::nullopt)) {
            raise_lock_error(("could not acquire lock '" + lock_.key() + "' within " +
                              std::to_string(wait_) + " s")
                                 .c_str(),
                             "timeout");
            throw py::error_already_set();
        }
        return *this;
    }

    const DistributedLock& lock() const noexcept { return lock_; }

  private:
    static RedisEndpoint endpoint(const std::optional<std::string>& host, std::optional<int> port,
                                  const std::optional<std::string>& password, std::optional<int> db,
                                  const std::optional<std::string>& username) {
        RedisEndpoint e = RedisEndpoint::from_env();
        if (username) {
            e.username = *username;
        }
        if (host) {
            e.host = *host;
            e.sentinels.clear();  // an explicit host wins over REDIS_SENTINELS
        }
        if (port) {
            if (*port < 1 || *port > 65535) {
                throw std::invalid_argument("port must be 1-65535");
            }
            e.port = static_cast<std::uint16_t>(*port);
        }
        if (password) {
            e.password = *password;
        }
        if (db) {
            e.db = *db;
        }
        return e;
    }

    double wait_;
    bool renew_;
    DistributedLock lock_;
};

void bind_lock(py::module_& m) {
    lock_error_type = PyErr_NewExceptionWithDoc(
        "yuxi_config._native.LockError",
        "Redis could not be used for the lock, or the lock was not acquired in time. "
        "`kind`: connect, auth, protocol, io, replication or timeout.",
        PyExc_RuntimeError, nullptr);
    m.attr("LockError") = py::handle(lock_error_type);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) {
                std::rethrow_exception(p);
            }
        } catch (const LockError& e) {
            raise_lock_error(e.what(), to_string(e.kind()));
        }
    });
    py::class_<PyLock>(m, "DistributedLock")
        .def(py::init<const std::string&, double, std::optional<double>, bool,
                      std::optional<std::string>, std::optional<int>, std::optional<std::string>,
                      std::optional<int>, std::optional<std::string>>(),
             py::arg("name"), py::arg("timeout") = 30.0, py::kw_only(),
             py::arg("wait") = py::none(), py::arg("renew") = true, py::arg("host") = py::none(),
             py::arg("port") = py::none(), py::arg("password") = py::none(),
             py::arg("db") = py::none(), py::arg("username") = py::none())
        .def("acquire", &PyLock::acquire, py::arg("wait") = py::none())
        .def("try_acquire", &PyLock::try_acquire)
        .def("release", &PyLock::release)
        .def("__enter__", &PyLock::enter, py::return_value_policy::reference)
        .def("__exit__",
             [](PyLock& l, const py::object&, const py::object&, const py::object&) {
                 l.release();
                 return false;
             })
        .def_property_readonly("fencing_token",
                               [](const PyLock& l) { return l.lock().fencing_token(); })
        .def_property_readonly("held", [](const PyLock& l) { return l.lock().held(); })
        .def_property_readonly("lost", [](const PyLock& l) { return l.lock().lost(); })
        .def_property_readonly("loss_reason",
                               [](const PyLock& l) { return to_string(l.lock().loss_reason()); })
        .def_property_readonly("key", [](const PyLock& l) { return l.lock().key(); });
}
#endif

}  // namespace
}  // namespace yuxi::config::python

PYBIND11_MODULE(_native, m) {
    namespace yp = yuxi::config::python;
    using yuxi::config::SegmentError;
    m.doc() = "yuxi-config's C++ client; use the yuxi_config package instead.";

    if (PyType_Ready(&yp::cache_record_type) < 0) {
        throw py::error_already_set();
    }
    yp::segment_error_type = PyErr_NewExceptionWithDoc(
        "yuxi_config._native.SegmentError",
        "The segment cannot be opened: absent, unreadable, corrupt or of another layout. "
        "`kind` says which.",
        PyExc_RuntimeError, nullptr);
    m.attr("SegmentError") = py::handle(yp::segment_error_type);
    yp::json_loads = py::object(py::module_::import("json").attr("loads")).release().ptr();
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) {
                std::rethrow_exception(p);
            }
        } catch (const SegmentError& e) {
            yp::raise_segment_error(e);
        }
    });

    py::class_<yp::NativeClient, std::shared_ptr<yp::NativeClient>>(m, "Client")
        .def(py::init<const std::string&>(), py::arg("segment") = "")
        .def_property_readonly("segment",
                               [](const yp::NativeClient& c) { return c.client().name(); })
        .def("getter", &yp::make_getter, py::arg("metadata") = false)
        .def(
            "get_raw",
            [](const yp::NativeClient& c, const std::string& key, bool metadata) -> py::object {
                const auto v = c.client().get(key, yp::ns_of(metadata));
                return v ? py::object(py::str(*v)) : py::object(py::none());
            },
            py::arg("key"), py::arg("metadata") = false)
        .def_property_readonly("revision",
                               [](const yp::NativeClient& c) { return c.client().revision(); })
        .def("snapshot",
             [](const std::shared_ptr<yp::NativeClient>& c) {
                 return yp::NativeSnapshot{c, c->client().snapshot()};
             })
        .def(
            "wait_for_change",
            [](const yp::NativeClient& c, std::uint64_t rev, double timeout) {
                py::gil_scoped_release unlocked;
                return c.client().wait_for_change(rev, yp::seconds(timeout));
            },
            py::arg("revision"), py::arg("timeout"))
        .def(
            "wait_for_revision",
            [](const yp::NativeClient& c, std::uint64_t rev, double timeout) {
                py::gil_scoped_release unlocked;
                return c.client().wait_for_revision(rev, yp::seconds(timeout));
            },
            py::arg("revision"), py::arg("timeout"))
        .def("health", [](const yp::NativeClient& c) {
            const auto h = c.client().health();
            py::dict d;
            d["revision"] = h.revision;
            d["heartbeat_age"] = static_cast<double>(h.heartbeat_age.count()) / 1e9;
            d["writer_alive"] = h.writer_alive;
            d["source_state"] = std::string(yuxi::config::to_string(h.source_state));
            d["source_state_age"] = static_cast<double>(h.source_state_age.count()) / 1e9;
            d["entries"] = h.entries;
            d["segment_bytes"] = h.segment_bytes;
            d["writer_pid"] = h.writer_pid;
            d["retired"] = h.retired;
            return d;
        });

#ifdef YUXI_CONFIG_HAVE_LOCK
    yp::bind_lock(m);
#endif
#ifdef YUXI_CONFIG_HAVE_ADMIN
    yp::bind_admin(m);
#endif

    py::class_<yp::NativeSnapshot>(m, "Snapshot")
        .def_property_readonly("revision",
                               [](const yp::NativeSnapshot& s) { return s.snap.revision(); })
        .def("get", &yp::NativeSnapshot::get, py::arg("key"), py::arg("metadata") = false)
        .def("get_raw", &yp::NativeSnapshot::get_raw, py::arg("key"), py::arg("metadata") = false)
        .def("keys", &yp::NativeSnapshot::keys, py::arg("prefix") = "",
             py::arg("metadata") = false);
}
