# Database mode (label `database`): the agent against a real PostgreSQL (a fresh database
# per test on YUXI_TEST_DATABASE_URL's server; skipped without it), and fault injection on
# a private PostgreSQL the fault test starts itself (initdb as `postgres` when run as root;
# skipped without PostgreSQL's programs).
if(TARGET yuxi-config-agent)
  foreach(source integration/database_mode_test fault/postgres_fault_test)
    get_filename_component(name ${source} NAME)
    yuxi_config_add_gtest(${name} SOURCE ${source}.cpp LABEL database TIMEOUT 240
      LIBS yuxi::config PkgConfig::LIBPQ)
  endforeach()
endif()

# PostgreSQL least privilege (roles.sql) and TLS verify-full with a private CA (label
# `security`).
if(TARGET yuxi-config-agent AND TARGET yuxi-configctl)
  yuxi_config_add_gtest(postgres_security_test SOURCE integration/postgres_security_test.cpp
    LABEL security TIMEOUT 180 LIBS yuxi::config PkgConfig::LIBPQ)
endif()
