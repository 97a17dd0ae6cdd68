# expect: panic 5
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    li a0, 0x20
    li a1, 4
    li a7, 0x101
    ecall
    EXPECT_PANIC_TAIL
TEST_END
