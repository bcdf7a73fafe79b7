// value-schema: the JSON Schema of each key, through the admin library.
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/write_commands.hpp"

namespace yuxi::config::cli {
namespace {

std::string shown(const ValueSchemaRequest& r) {
    return std::string(r.metadata ? "metadata" : "config") + " pattern '" + r.pattern + "'";
}

void print_list(const std::vector<ValueSchemaInfo>& all, bool json, std::ostream& out) {
    if (!json) {
        for (const ValueSchemaInfo& s : all) {
            out << (s.metadata ? "metadata  " : "config    ") << s.pattern << "  (" << s.updated_by
                << ", " << s.updated_at << ")\n";
        }
        return;
    }
    out << '[';
    for (std::size_t i = 0; i < all.size(); ++i) {
        const ValueSchemaInfo& s = all[i];
        out << (i != 0 ? "," : "") << "{\"namespace\":\"" << (s.metadata ? "metadata" : "config")
            << "\",\"pattern\":" << quote(s.pattern) << ",\"schema\":" << s.schema
            << ",\"updated_by\":" << quote(s.updated_by)
            << ",\"updated_at\":" << quote(s.updated_at) << '}';
    }
    out << "]\n";
}

}  // namespace

Exit run(const ValueSchemaRequest& r, Io io) {
    using Op = ValueSchemaRequest::Op;
    Admin admin = open_admin(r.db);
    switch (r.op) {
        case Op::set:
            admin.set_value_schema(r.pattern, read_input(r.file), r.metadata, r.force);
            io.out << "stored the schema of " << shown(r) << '\n';
            return Exit::ok;
        case Op::import: {
            const auto patterns = admin.import_value_schemas(read_input(r.file), r.force);
            io.out << "stored " << patterns.size() << " schema(s):";
            for (const std::string& p : patterns) {
                io.out << ' ' << p;
            }
            io.out << '\n';
            return Exit::ok;
        }
        case Op::get: {
            const auto s = admin.value_schema(r.pattern, r.metadata);
            if (!s) {
                io.err << "yuxi-configctl: no schema for " << shown(r) << '\n';
                return Exit::not_found;
            }
            io.out << s->schema << '\n';
            return Exit::ok;
        }
        case Op::remove:
            if (!admin.remove_value_schema(r.pattern, r.metadata)) {
                io.err << "yuxi-configctl: no schema for " << shown(r) << "; nothing deleted\n";
                return Exit::not_found;
            }
            io.out << "deleted the schema of " << shown(r) << '\n';
            return Exit::ok;
        case Op::list:
            print_list(admin.value_schemas(), r.json, io.out);
            return Exit::ok;
    }
    return Exit::usage;
}

}  // namespace yuxi::config::cli
