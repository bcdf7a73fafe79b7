// The writers' half of yuxi_config._native (native_admin.cpp): Admin, ConfigFileWriter and
// their exceptions, registered on the module by bind_admin().
#pragma once

#include <pybind11/pybind11.h>

namespace yuxi::config::python {

void bind_admin(pybind11::module_& m);

}  // namespace yuxi::config::python
