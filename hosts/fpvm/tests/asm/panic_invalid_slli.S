# expect: panic 1
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0x02109093  # slli x1, x1, 1 with funct7 = 1
    EXPECT_PANIC_TAIL
TEST_END
