/* Minimal Cortex-M startup for the C test firmware: vector table, .data/.bss set-up, main. */
#include <stdint.h>

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
extern int main(void);
void Reset_Handler(void);
void SysTick_Handler(void);
void HardFault_Handler(void);

static void Default_Handler(void) {
    HardFault_Handler();
}

/* The initial stack pointer, then the 15 system exception handlers. */
struct vector_table {
    void *initial_sp;
    void (*handlers[15])(void);
};

__attribute__((section(".isr_vector"), used)) static const struct vector_table vectors = {
    &_estack,
    {
        Reset_Handler,
        Default_Handler, /* NMI */
        HardFault_Handler,
        Default_Handler, /* MemManage */
        Default_Handler, /* BusFault */
        Default_Handler, /* UsageFault */
        0, 0, 0, 0,
        Default_Handler, /* SVCall */
        Default_Handler, /* DebugMonitor */
        0,
        Default_Handler, /* PendSV */
        SysTick_Handler,
    },
};

void Reset_Handler(void) {
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    (void)main();
    for (;;) {
    }
}
