# packaging/packaging.cmake - what `cmake --install` installs and how `cpack -G DEB` packages
# it (included by the top CMakeLists.txt):
#   bin/ltibadges; the page translations (top CMakeLists.txt, with the catalogs);
#   share/man/man1/ltibadges.1.gz (docs/ltibadges.1);
#   share/doc/ltibadges/examples/ltibadges.ini, the example configuration, every key commented;
#   SYSCONFDIR/ltibadges/ltibadges.ini, the same, only when there is none yet (an edited one is
#     kept; /etc/ltibadges/ltibadges.ini with the prefix /usr);
#   lib/systemd/system/ltibadges.service.
# The Debian package is made from a build configured with -DCMAKE_INSTALL_PREFIX=/usr (so that
# the paths compiled in and written in the unit are the installed ones; cpack refuses otherwise):
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DLTIBADGES_TESTS=OFF
#   cmake --build build-deb && (cd build-deb && cpack -G DEB)

set(LTIBADGES_STATEDIR ${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/ltibadges)
set(LTIBADGES_CONFIG ${CMAKE_INSTALL_FULL_SYSCONFDIR}/ltibadges/ltibadges.ini)
set(LTIBADGES_BINARY ${CMAKE_INSTALL_FULL_BINDIR}/ltibadges)
set(LTIBADGES_LOCALEDIR ${CMAKE_INSTALL_FULL_LOCALEDIR})

# serve tells systemd through sd_notify when it is ready and when it stops (Type=notify). Without
# libsystemd (libsystemd-dev) it cannot, and the unit is Type=simple: ready once started.
if(SYSTEMD_FOUND)
  target_link_libraries(lb_cli PRIVATE PkgConfig::SYSTEMD)
  target_compile_definitions(lb_cli PRIVATE LTIBADGES_SYSTEMD=1)
  set(LTIBADGES_UNIT_TYPE notify)
else()
  message(STATUS "libsystemd not found (libsystemd-dev): serve will not notify systemd, "
    "and ltibadges.service is Type=simple")
  set(LTIBADGES_UNIT_TYPE simple)
endif()

configure_file(${CMAKE_CURRENT_LIST_DIR}/ltibadges.ini.in ${CMAKE_BINARY_DIR}/ltibadges.ini @ONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/ltibadges.service.in ${CMAKE_BINARY_DIR}/ltibadges.service
  @ONLY)

# man wants its pages compressed (and Debian's policy too); -n: the same bytes every time
find_program(GZIP gzip REQUIRED)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/ltibadges.1.gz
  COMMAND ${GZIP} -9n -c ${CMAKE_SOURCE_DIR}/docs/ltibadges.1 > ${CMAKE_BINARY_DIR}/ltibadges.1.gz
  DEPENDS ${CMAKE_SOURCE_DIR}/docs/ltibadges.1)
add_custom_target(manpage ALL DEPENDS ${CMAKE_BINARY_DIR}/ltibadges.1.gz)

install(TARGETS ltibadges RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_BINARY_DIR}/ltibadges.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_BINARY_DIR}/ltibadges.ini DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${CMAKE_BINARY_DIR}/ltibadges.service DESTINATION lib/systemd/system)
# The configuration holds secrets (the SMTP password): 0640, its group set by the package's
# postinst (ltibadges). Installed only where there is none, so that reinstalling keeps an
# edited one; a package's staging directory has none, so the package always has it.
install(CODE "
  set(conf \"\$ENV{DESTDIR}${LTIBADGES_CONFIG}\")
  if(EXISTS \"\${conf}\")
    message(STATUS \"Keeping: \${conf}\")
  else()
    file(INSTALL DESTINATION \"${CMAKE_INSTALL_FULL_SYSCONFDIR}/ltibadges\" TYPE FILE
      PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
      FILES \"${CMAKE_BINARY_DIR}/ltibadges.ini\")
  endif()")

# cpack -G DEB
set(CPACK_PACKAGE_NAME ltibadges)
set(CPACK_PACKAGE_VENDOR "ltibadges")
set(CPACK_PACKAGE_CONTACT "ltibadges maintainers <ltibadges@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "LTI 1.1 tool provider that awards Open Badges")
set(CPACK_PACKAGE_DESCRIPTION "Canvas, Moodle and Open edX launch ltibadges as an external
tool. It verifies LTI 1.1 launches, shows learners and instructors their badges inside
the LMS, awards Open Badges 2.0 by the rules of each BadgeClass and issues them as a
hosted issuer, and exchanges grades with the LMS through LTI 1.1 Basic Outcomes.
The package runs it as the systemd service ltibadges (not enabled at install).")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# the configuration is installed under /etc, outside the prefix
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION web)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# the libraries' packages, from the binary's ELF dependencies (dpkg-shlibdeps), and adduser
# for the maintainer scripts
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_LIST_DIR}/debian/conffiles
  ${CMAKE_CURRENT_LIST_DIR}/debian/postinst ${CMAKE_CURRENT_LIST_DIR}/debian/prerm
  ${CMAKE_CURRENT_LIST_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_CURRENT_LIST_DIR}/cpack-project.cmake)
set(CPACK_LTIBADGES_PREFIX ${CMAKE_INSTALL_PREFIX})
include(CPack)
