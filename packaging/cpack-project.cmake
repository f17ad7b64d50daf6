# packaging/cpack-project.cmake - run by cpack for each generator: a Debian package from a build
# whose compiled-in paths (translations) and unit (ExecStart) are not under /usr would not work.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_LTIBADGES_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "the Debian package needs a build configured with "
    "-DCMAKE_INSTALL_PREFIX=/usr (this one has ${CPACK_LTIBADGES_PREFIX})")
endif()
