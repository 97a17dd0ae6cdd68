# expect: exit 42
.include "macros.inc"
TEST_BEGIN
    li a0, 42
    li a7, 93
    ecall
    j fail
TEST_END
